package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runBenchBinary runs `herald bench args...` with a temporary directory of
// its own and returns its JSON report. It fails the test unless the bench
// exits 0 and leaves that directory empty.
func runBenchBinary(t *testing.T, env []string, args ...string) benchReport {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.Command(heraldBin, append([]string{"bench", "--json"}, args...)...)
	cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("herald bench %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var r benchReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, stdout.String())
	}
	mustBeEmptyDir(t, tmp)
	return r
}

func mustBeEmptyDir(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("the bench left %s in its temporary directory", left[0].Name())
	}
}

// checkSane fails the test unless r shows a complete, clean run of its
// Herald: every delivery, no duplicates, no bad signatures, no API errors.
func checkSane(t *testing.T, r benchReport) {
	t.Helper()
	if r.Delivered != r.DeliveriesExpected || r.DeliveriesExpected != int64(r.Events)*int64(countFast(r)) {
		t.Errorf("delivered %d of %d deliveries expected, for %d events to %d fast webhooks", r.Delivered, r.DeliveriesExpected, r.Events, countFast(r))
	}
	if r.Duplicates != 0 || r.SignatureFailures != 0 || r.UnknownRequests != 0 || r.APIErrors != 0 {
		t.Errorf("%d duplicates, %d signature failures, %d unknown requests, %d API errors; want none",
			r.Duplicates, r.SignatureFailures, r.UnknownRequests, r.APIErrors)
	}
	if r.CeilingPerSecond <= 0 || r.IngestPerSecond <= 0 || r.DeliveriesPerSecond <= 0 || r.CeilingRatio <= 0 {
		t.Errorf("ceiling %.0f/s, ingest %.0f/s, delivery %.0f/s, ratio %.2f: want all positive",
			r.CeilingPerSecond, r.IngestPerSecond, r.DeliveriesPerSecond, r.CeilingRatio)
	}
	if l := r.Latency; !(0 <= l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max && l.Max > 0) {
		t.Errorf("latency %+v: want 0 <= p50 <= p95 <= p99 <= max, max > 0", l)
	}
	for _, wh := range r.PerWebhook {
		if !wh.Slow && wh.Delivered != r.Events {
			t.Errorf("webhook %s: %d delivered, want %d", wh.Name, wh.Delivered, r.Events)
		}
	}
}

func countFast(r benchReport) int {
	n := 0
	for _, wh := range r.PerWebhook {
		if !wh.Slow {
			n++
		}
	}
	return n
}

// checkHeraldMeasured fails the test unless r has the memory and CPU of
// its nodes, and those processes are gone.
func checkHeraldMeasured(t *testing.T, r benchReport, nodes int) {
	t.Helper()
	h := r.Herald
	if h == nil || len(h.Nodes) != nodes {
		t.Fatalf("herald usage %+v: want %d node(s)", h, nodes)
	}
	if h.PeakRSSBytes < 1<<20 || h.CPUSeconds <= 0 || h.CPUMicrosPerDelivery <= 0 {
		t.Errorf("peak RSS %d bytes, CPU %.3fs, %.0f µs per delivery: want all positive", h.PeakRSSBytes, h.CPUSeconds, h.CPUMicrosPerDelivery)
	}
	for _, n := range h.Nodes {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", n.PID)); err == nil {
			t.Errorf("Herald node pid %d still runs after the bench exited", n.PID)
		}
	}
}

func TestBenchModes(t *testing.T) {
	t.Run("one", func(t *testing.T) {
		r := runBenchBinary(t, nil, "--events", "300", "--ceiling-duration", "200ms")
		checkSane(t, r)
		checkHeraldMeasured(t, r, 1)
		if r.Mode != "one" || r.Webhooks != 1 || r.Batch != 100 || r.Rate != 0 {
			t.Errorf("mode %q, %d webhooks, batch %d, rate %d: want one, 1, 100, 0", r.Mode, r.Webhooks, r.Batch, r.Rate)
		}
	})
	t.Run("fanout", func(t *testing.T) {
		r := runBenchBinary(t, nil, "--mode", "fanout", "--events", "100", "--ceiling-duration", "200ms")
		checkSane(t, r)
		checkHeraldMeasured(t, r, 1)
		if r.Webhooks != 10 || r.DeliveriesExpected != 1000 {
			t.Errorf("%d webhooks, %d deliveries expected: want 10 and 1000", r.Webhooks, r.DeliveriesExpected)
		}
	})
	t.Run("slow", func(t *testing.T) {
		profile := filepath.Join(t.TempDir(), "cpu.prof")
		r := runBenchBinary(t, nil, "--mode", "slow", "--rate", "50", "--duration", "1s", "--ceiling-duration", "200ms",
			"--cpuprofile", profile)
		checkSane(t, r)
		checkHeraldMeasured(t, r, 1)
		if r.Events != 50 || r.Batch != 1 || len(r.PerWebhook) != 2 || !r.PerWebhook[1].Slow || r.PerWebhook[0].Slow {
			t.Fatalf("%d events, batch %d, webhooks %+v: want 50 single events to a fast and a slow webhook", r.Events, r.Batch, r.PerWebhook)
		}
		if fast := r.PerWebhook[0].Latency; fast.P99 >= float64(slowAnswer/time.Millisecond) {
			t.Errorf("fast webhook p99 %.1f ms: the slow receiver held it up", fast.P99)
		}
		if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
			t.Errorf("--cpuprofile: the child wrote no profile (%v)", err)
		}
	})
}

func TestBenchTarget(t *testing.T) {
	p := startHerald(t, nil, "--database", "sqlite:"+filepath.Join(t.TempDir(), "herald.db"), "--allow-private-destinations")
	r := runBenchBinary(t, []string{"HERALD_ADMIN_SECRET=" + testAdminSecret},
		"--target", p.URL, "--events", "200", "--batch", "50", "--ceiling-duration", "200ms")
	checkSane(t, r)
	if r.Herald != nil || r.Target != p.URL || r.Database != "" {
		t.Errorf("herald %+v, target %q, database %q: want no usage, the target and no database", r.Herald, r.Target, r.Database)
	}
}

// runningBench is a `herald bench` with far more events than it will post
// before the test stops it.
type runningBench struct {
	cmd      *exec.Cmd
	tmp      string
	stderr   *syncBuffer
	exited   chan error
	children []int // its Herald nodes
}

// startLongBench starts the bench and returns once it posts events.
func startLongBench(t *testing.T) *runningBench {
	t.Helper()
	b := &runningBench{tmp: t.TempDir(), stderr: &syncBuffer{}, exited: make(chan error, 1)}
	b.cmd = exec.Command(heraldBin, "bench", "--events", "10000000", "--ceiling-duration", "100ms")
	b.cmd.Env = append(os.Environ(), "TMPDIR="+b.tmp)
	b.cmd.Stderr = b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.exited <- b.cmd.Wait() }()
	t.Cleanup(func() { b.cmd.Process.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(b.stderr.String(), "accepted") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line within 20s:\n%s", b.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.children = benchChildren(t, b.cmd.Process.Pid)
	if len(b.children) != 1 {
		t.Fatalf("the bench runs %d children, want 1 Herald", len(b.children))
	}
	return b
}

// waitFailed waits for the bench to exit, which must be with an error
// that says want, its Herald gone and its temporary directory empty.
func (b *runningBench) waitFailed(t *testing.T, want string) {
	t.Helper()
	select {
	case err := <-b.exited:
		if err == nil {
			t.Error("the bench exited 0")
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the bench did not stop within 30s:\n%s", b.stderr)
	}
	if !strings.Contains(b.stderr.String(), want) {
		t.Errorf("the bench did not say %q:\n%s", want, b.stderr)
	}
	for _, pid := range b.children {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("Herald pid %d still runs after the bench stopped", pid)
		}
	}
	mustBeEmptyDir(t, b.tmp)
}

// A Ctrl-C stops the run and its Herald, and removes its temporary files.
func TestBenchInterrupted(t *testing.T) {
	b := startLongBench(t)
	b.cmd.Process.Signal(syscall.SIGINT)
	b.waitFailed(t, "interrupted: posted")
}

// A Herald that dies stops the run at once with what it printed.
func TestBenchHeraldDies(t *testing.T) {
	b := startLongBench(t)
	syscall.Kill(b.children[0], syscall.SIGKILL)
	b.waitFailed(t, "node 0 (herald serve) exited during the run (signal: killed)")
}

// benchChildren returns the pids of the processes whose parent is pid.
func benchChildren(t *testing.T, pid int) []int {
	t.Helper()
	// Each thread lists the children it started.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, task := range tasks {
		raw, err := os.ReadFile(task)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(string(raw)) {
			var p int
			fmt.Sscan(f, &p)
			pids = append(pids, p)
		}
	}
	return pids
}
