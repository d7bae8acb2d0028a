package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// benchNode is one `herald serve` child of the bench.
type benchNode struct {
	cmd    *exec.Cmd
	url    string
	output *tailBuffer // the end of its stdout and stderr, for error messages
	exited chan struct{}
}

var benchListeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// startBenchNode runs exe with args (serve and its flags) and returns once
// it prints the URL it listens on. The child has its own process group so
// that a Ctrl-C meant for the bench does not reach it: the bench stops it
// with SIGTERM, which lets it write its CPU profile.
func startBenchNode(ctx context.Context, exe string, args []string, env []string) (*benchNode, error) {
	n := &benchNode{output: &tailBuffer{max: 16 << 10}, exited: make(chan struct{})}
	n.cmd = exec.Command(exe, args...)
	n.cmd.Env = append(os.Environ(), env...)
	n.cmd.Stderr = n.output
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	urlc := make(chan string, 1)
	go n.scan(stdout, urlc)
	go func() {
		n.cmd.Wait()
		close(n.exited)
	}()
	select {
	case n.url = <-urlc:
		return n, nil
	case <-n.exited:
		return nil, fmt.Errorf("it exited before listening (%v):\n%s", n.cmd.ProcessState, n.output)
	case <-time.After(60 * time.Second):
		err = fmt.Errorf("it did not print the address it listens on within 60s:\n%s", n.output)
	case <-ctx.Done():
		err = ctx.Err()
	}
	n.stop()
	return nil, err
}

// scan copies the child's stdout to its output buffer and sends the first
// URL it says it listens on.
func (n *benchNode) scan(stdout io.Reader, urlc chan<- string) {
	sc := bufio.NewScanner(stdout)
	found := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(n.output, line)
		if m := benchListeningRE.FindStringSubmatch(line); m != nil && !found {
			found = true
			urlc <- m[1]
		}
	}
}

func (n *benchNode) pid() int { return n.cmd.Process.Pid }

// stop sends SIGTERM and waits for the child to exit, or kills it after
// 30 s. It returns an error when the child did not exit cleanly.
func (n *benchNode) stop() error {
	select {
	case <-n.exited:
	default:
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(30 * time.Second):
			n.cmd.Process.Kill()
			<-n.exited
			return fmt.Errorf("it did not stop within 30s of SIGTERM and was killed:\n%s", n.output)
		}
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("it exited with status %d:\n%s", code, n.output)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	mu  sync.Mutex
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// procStats is what Linux accounts for a process.
type procStats struct {
	CPU     time.Duration // user and system time since it started
	PeakRSS int64         // bytes, the high-water mark of its resident memory (VmHWM)
}

// clockTicks is USER_HZ, the unit of times in /proc/<pid>/stat: 100 on
// every Linux architecture Go supports, and not readable without cgo.
const clockTicks = 100

// readProcStats reads /proc/<pid>/stat and /proc/<pid>/status.
func readProcStats(pid int) (procStats, error) {
	var s procStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name may hold spaces and parentheses: fields are
	// counted from the last ')'. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(stat), ')')
	var fields []string
	if i >= 0 {
		fields = strings.Fields(string(stat[i+1:]))
	}
	if len(fields) < 13 {
		return s, fmt.Errorf("/proc/%d/stat has an unexpected format", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return s, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	s.CPU = time.Duration(ticks) * time.Second / clockTicks

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return s, fmt.Errorf("/proc/%d/status VmHWM: %w", pid, err)
			}
			s.PeakRSS = kb << 10
			return s, nil
		}
	}
	return s, errors.New("no VmHWM line in /proc/" + strconv.Itoa(pid) + "/status")
}
