package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhooks/herald/keyring"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// heraldBin is the real binary, built once by TestMain.
var heraldBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-e2e-")
	if err != nil {
		panic(err)
	}
	heraldBin = filepath.Join(dir, "herald")
	out, err := exec.Command("go", "build", "-o", heraldBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build herald: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testAdminSecret = "e2e-admin-secret"

// testMasterKey is the master key of the nodes the tests run on PostgreSQL.
var testMasterKey = keyring.Generate()

// proc is one running `herald serve`.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	URL    string
	args   []string
	env    []string
	logs   *syncBuffer
	exited chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listeningRE = regexp.MustCompile(`listening on (https?://\S+)`)

// startHerald runs the binary with serve and args, on a free loopback port,
// and returns once it listens. It is killed at the end of the test.
func startHerald(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, args: args, env: env}
	p.start()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) start() {
	p.t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0"}, p.args...)
	cmd := exec.Command(heraldBin, args...)
	cmd.Env = append(os.Environ(), "HERALD_ADMIN_SECRET="+testAdminSecret)
	if slices.ContainsFunc(p.args, func(a string) bool { return strings.HasPrefix(a, "postgres") }) {
		// Nodes sharing PostgreSQL need the same master key; on SQLite
		// each node makes its own key file beside the database.
		cmd.Env = append(cmd.Env, "HERALD_MASTER_KEY="+testMasterKey)
	}
	cmd.Env = append(cmd.Env, p.env...)
	p.logs = &syncBuffer{}
	cmd.Stderr = p.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				urlc <- m[1]
			}
		}
	}()
	go func() { cmd.Wait(); close(p.exited) }()
	select {
	case p.URL = <-urlc:
	case <-p.exited:
		p.t.Fatalf("herald exited before listening:\n%s", p.logs)
	case <-time.After(30 * time.Second):
		p.t.Fatalf("herald did not listen within 30s:\n%s", p.logs)
	}
}

// kill sends SIGKILL: no shutdown code runs.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			p.t.Fatalf("herald exited %d after SIGTERM:\n%s", code, p.logs)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("herald did not stop within 30s of SIGTERM:\n%s", p.logs)
	}
}

// client returns an API client signed in as the bootstrap admin.
func (p *proc) client(t testing.TB) *apiClient {
	t.Helper()
	c := newAPIClient(p.URL)
	if err := c.login(context.Background(), "admin", testAdminSecret); err != nil {
		t.Fatalf("login: %v\n%s", err, p.logs)
	}
	return c
}

// mustDo fails the test unless the request answers 2xx.
func mustDo(t testing.TB, c *apiClient, method, path string, body, out any) {
	t.Helper()
	if _, err := c.do(context.Background(), method, path, body, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// setupWebhook creates tenant acme, instance sandbox, a designer webhook
// listening for PATIENT_CREATED and every CDT event, publishes it, points it
// at url and activates it. It returns the instance path and the secret.
func setupWebhook(t testing.TB, c *apiClient, url string) (inst, secret string) {
	t.Helper()
	mustDo(t, c, "POST", "/v1/tenants", map[string]any{"name": "acme"}, nil)
	mustDo(t, c, "POST", "/v1/tenants/acme/instances", map[string]any{"name": "sandbox"}, nil)
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/webhooks", map[string]any{
		"name": "wh-patient-sync", "title": "Patient sync",
		"triggers": []map[string]string{{"eventSubtype": "PATIENT_CREATED"}, {"eventEntity": "CDT"}},
	}, nil)
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/publish", map[string]any{}, nil)
	inst = "/v1/tenants/acme/instances/sandbox"
	mustDo(t, c, "PATCH", inst+"/webhooks/wh-patient-sync", map[string]any{"url": url}, nil)
	var s struct{ Secret string }
	mustDo(t, c, "GET", inst+"/webhooks/wh-patient-sync/secret", nil, &s)
	mustDo(t, c, "POST", inst+"/webhooks/wh-patient-sync/activate", nil, nil)
	return inst, s.Secret
}

// receiver is a webhook receiver on loopback that verifies every request
// with the public Standard Webhooks library and records what arrived.
type receiver struct {
	t   testing.TB
	URL string

	mu     sync.Mutex
	secret string
	// respond returns the status for the n-th request of an event id; nil
	// answers 200. Set it with setRespond. It runs without mu.
	respond func(n int, body map[string]any) int
	// hold, when set (setHold), keeps every verified request waiting
	// until the gate opens or the sender goes away.
	hold     *gate
	requests int
	perEvent map[string]int
	bodies   map[string]map[string]any
	badSigs  int
	arrived  chan string
}

func newReceiver(t testing.TB) *receiver { return newReceiverOn(t, "127.0.0.1") }

// newReceiverOn is newReceiver on another loopback address, such as
// 127.0.0.2.
func newReceiverOn(t testing.TB, host string) *receiver {
	r := &receiver{t: t, perEvent: map[string]int{}, bodies: map[string]map[string]any{}, arrived: make(chan string, 100000)}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.URL = "http://" + ln.Addr().String() + "/hook"
	return r
}

func (r *receiver) setSecret(s string) {
	r.mu.Lock()
	r.secret = s
	r.mu.Unlock()
}

// setRespond sets how the receiver answers (see receiver.respond).
func (r *receiver) setRespond(f func(n int, body map[string]any) int) {
	r.mu.Lock()
	r.respond = f
	r.mu.Unlock()
}

// setHold makes the receiver hold every request it verifies until g
// opens; nil lets them through again.
func (r *receiver) setHold(g *gate) {
	r.mu.Lock()
	r.hold = g
	r.mu.Unlock()
}

// arrivedSet returns the ids of the events that have arrived (2xx) so far.
func (r *receiver) arrivedSet() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(r.bodies))
	for id := range r.bodies {
		out[id] = true
	}
	return out
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	wh, err := standardwebhooks.NewWebhook(r.secret)
	if err == nil {
		err = wh.Verify(body, req.Header)
	}
	if err != nil {
		r.badSigs++
		http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		r.badSigs++
		http.Error(w, "not json", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	r.perEvent[id]++
	n, respond, hold := r.perEvent[id], r.respond, r.hold
	// Holding and answering run unlocked: they may block, and the test
	// reads the receiver meanwhile.
	r.mu.Unlock()
	opened := hold == nil || hold.wait(req.Context())
	status := http.StatusOK
	if opened && respond != nil {
		status = respond(n, m)
	}
	r.mu.Lock()
	if !opened {
		return // the sender gave up (or died) while the request was held
	}
	if status/100 == 2 {
		if _, dup := r.bodies[id]; !dup {
			r.bodies[id] = m
			r.arrived <- id
		}
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "answered %d", status)
}

// duplicates counts the requests beyond the first for the events in ids:
// delivery is at least once, and receivers dedupe on webhook-id.
func (r *receiver) duplicates(ids map[string]bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id := range ids {
		n += r.perEvent[id] - 1
	}
	return n
}

// waitFor waits until every id in want has arrived (2xx), or fails.
func (r *receiver) waitFor(t testing.TB, want map[string]bool, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		missing := 0
		for id := range want {
			if _, ok := r.bodies[id]; !ok {
				missing++
			}
		}
		r.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-r.arrived:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d events never arrived", missing, len(want))
		}
	}
}

// gate holds requests until it opens: a receiver that hangs, for tests
// that need requests in flight at a moment they choose.
type gate struct {
	opened chan struct{}
	once   sync.Once
	// waiting counts the requests held now, reached the total of requests
	// ever held.
	waiting, reached atomic.Int64
}

func newGate() *gate { return &gate{opened: make(chan struct{})} }

// open lets every held request and every later one through.
func (g *gate) open() { g.once.Do(func() { close(g.opened) }) }

// wait holds the caller until the gate opens (true) or ctx is done
// (false).
func (g *gate) wait(ctx context.Context) bool {
	g.waiting.Add(1)
	g.reached.Add(1)
	defer g.waiting.Add(-1)
	select {
	case <-g.opened:
		return true
	case <-ctx.Done():
		return false
	}
}
