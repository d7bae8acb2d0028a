package main

import (
	"bufio"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
)

// listenProc is one running `herald listen`.
type listenProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *syncBuffer // stdout: one line per attempt
	errs   *syncBuffer // stderr
	exited chan struct{}
}

// startListen runs `herald listen` for acme/sandbox/wh-patient-sync of the
// Herald at server, forwarding to forward, signed in as the bootstrap
// admin, and returns once it is connected. It is killed at the end of the
// test.
func startListen(t *testing.T, server, forward string) *listenProc {
	t.Helper()
	cmd := exec.Command(heraldBin, "listen", "--server", server, "--webhook", "acme/sandbox/wh-patient-sync", "--forward", forward)
	cmd.Env = append(os.Environ(), "HERALD_API_CLIENT=admin", "HERALD_API_SECRET="+testAdminSecret)
	l := &listenProc{t: t, cmd: cmd, out: &syncBuffer{}, errs: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = l.out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l.errs.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "connected to acme/sandbox/wh-patient-sync") {
				select {
				case connected <- struct{}{}:
				default:
				}
			}
		}
	}()
	go func() { cmd.Wait(); close(l.exited) }()
	t.Cleanup(func() {
		select {
		case <-l.exited:
		default:
			cmd.Process.Kill()
			<-l.exited
		}
	})
	select {
	case <-connected:
	case <-l.exited:
		t.Fatalf("herald listen exited before it connected:\n%s", l.errs)
	case <-time.After(30 * time.Second):
		t.Fatalf("herald listen did not connect within 30s:\n%s", l.errs)
	}
	return l
}

// stop interrupts the listener as Ctrl-C would and waits for a clean exit.
func (l *listenProc) stop() {
	l.t.Helper()
	l.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-l.exited:
		if code := l.cmd.ProcessState.ExitCode(); code != 0 {
			l.t.Fatalf("herald listen exited %d after Ctrl-C:\n%s", code, l.errs)
		}
	case <-time.After(15 * time.Second):
		l.t.Fatalf("herald listen did not stop within 15s of Ctrl-C:\n%s", l.errs)
	}
}

// lines returns the attempt lines the listener printed.
func (l *listenProc) lines() []string {
	return strings.FieldsFunc(l.out.String(), func(r rune) bool { return r == '\n' })
}

// herald listen against a real herald serve: two listeners share a
// "listen:" webhook's deliveries and post them, signed and unchanged, to a
// local receiver that verifies every signature; the local 500 is on record
// as a failed attempt, retried; and events posted while no listener is
// connected arrive once one connects again.
func TestListen(t *testing.T) {
	// Without --allow-private-destinations: Herald dials nothing for a
	// "listen:" webhook; the listener reaches the local receiver.
	p := startHerald(t, nil, "--database", "sqlite:"+filepath.Join(t.TempDir(), "herald.db"))
	c := p.client(t)
	recv := newReceiver(t)
	recv.SetRespond(func(w http.ResponseWriter, r *http.Request, req *heraldtest.Request) {
		status := http.StatusOK
		if req.N == 1 { // the very first request: one event's first attempt
			status = http.StatusInternalServerError
		}
		answer(func(int, map[string]any) int { return status })(w, r, req)
	})
	inst, secret := setupWebhook(t, c, "listen:")
	recv.SetSecrets(secret)

	l1 := startListen(t, p.URL, recv.URL+"/hook")
	l2 := startListen(t, p.URL, recv.URL+"/hook")
	ids := postEvents(t, c, inst, 20)
	recv.WaitDelivered(t, 60*time.Second, slices.Collect(maps.Keys(ids))...)
	if n := recv.SignatureFailures(); n != 0 {
		t.Errorf("%d requests failed signature verification", n)
	}
	for id, r := range recv.Delivered() {
		if b := jsonBody(t, r); b["eventId"] != id || b["patientId"] != ids[id] {
			t.Errorf("event %s arrived as %v", id, b)
		}
	}

	// The local 500 is an attempt on record, and the retry delivered.
	var retried []delivery
	deadline := time.Now().Add(15 * time.Second)
	for len(retried) == 0 && time.Now().Before(deadline) {
		for _, d := range listDeliveries(t, c, inst, "") {
			var full delivery
			mustDo(t, c, "GET", inst+"/deliveries/"+d.ID, nil, &full)
			if len(full.Attempts) > 1 && full.Status == "DELIVERED" {
				retried = append(retried, full)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(retried) != 1 {
		t.Fatalf("%d deliveries retried, want the one answered 500 first", len(retried))
	}
	if a := retried[0].Attempts; len(a) != 2 || a[0].StatusCode != 500 || !strings.Contains(a[0].ResponseBody, "answered 500") ||
		a[0].Error == "" || a[1].StatusCode != 200 {
		t.Errorf("attempts of the retried delivery = %+v, want the local 500 with its body, then 200", a)
	}
	waitDeliveries(t, c, inst, "status=DELIVERED", 20)

	// One line per attempt, shared between the two listeners.
	n1, n2 := len(l1.lines()), len(l2.lines())
	if n1+n2 != 21 || n1 == 0 || n2 == 0 {
		t.Errorf("the listeners printed %d and %d lines, want 21 attempts shared between both:\n%s\n%s", n1, n2, l1.out, l2.out)
	}
	if !strings.Contains(l1.out.String()+l2.out.String(), "attempt 1  500  ") {
		t.Errorf("no listener printed the local 500:\n%s\n%s", l1.out, l2.out)
	}
	for _, line := range append(l1.lines(), l2.lines()...) {
		if strings.Contains(line, "patient-") || strings.Contains(line, "Patient") {
			t.Errorf("a listener printed event data: %q", line)
		}
	}

	// Stopped, the listeners take nothing: attempts fail and wait.
	l1.stop()
	l2.stop()
	later := postEvents(t, c, inst, 5)
	var first string
	for id := range later {
		first = id
		break
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		var list []delivery
		for _, d := range listDeliveries(t, c, inst, "") {
			if d.EventID == first {
				list = append(list, d)
			}
		}
		if len(list) == 1 {
			var full delivery
			mustDo(t, c, "GET", inst+"/deliveries/"+list[0].ID, nil, &full)
			if len(full.Attempts) > 0 {
				if full.Status != "RETRYING" || !strings.Contains(full.Attempts[0].Error, "no herald listen is connected to this webhook") {
					t.Fatalf("with no listener, the delivery is %s with attempts %+v, want RETRYING saying no herald listen is connected", full.Status, full.Attempts)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no attempt recorded for an event posted while no listener was connected")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(10 * time.Second) // the laptop sleeps
	if n := recv.Count(); n != 21 {
		t.Fatalf("the receiver took %d requests while no listener was connected, want none beyond the 21", n)
	}

	// Back: the deliveries that waited are due as the listener connects,
	// not at their next retry (at least 21 s away by the schedule).
	startListen(t, p.URL, recv.URL+"/hook")
	recv.WaitDelivered(t, 15*time.Second, slices.Collect(maps.Keys(later))...)
	if n := recv.SignatureFailures(); n != 0 {
		t.Errorf("%d requests failed signature verification", n)
	}
	waitDeliveries(t, c, inst, "status=DELIVERED", 25)
	if strings.Contains(p.logs.String(), "patient-0") {
		t.Errorf("the server's log names a patient id:\n%s", p.logs)
	}
}
