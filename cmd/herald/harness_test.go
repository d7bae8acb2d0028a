package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/heraldhooks/herald/heraldtest"
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

// newReceiver is the kit's receiver on 127.0.0.1 as the end-to-end tests
// use it: strict (it refuses every request until SetSecrets gives it the
// webhook's secret), verifying with the public Standard Webhooks library,
// code Herald did not write (decision 0005), and answering with
// answer(nil). Webhooks point at its URL plus "/hook".
func newReceiver(t testing.TB) *heraldtest.Receiver { return newReceiverOn(t, "127.0.0.1") }

// newReceiverOn is newReceiver on another loopback address, such as
// 127.0.0.2.
func newReceiverOn(t testing.TB, host string) *heraldtest.Receiver {
	t.Helper()
	return heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{Host: host, Strict: true,
		Verify: verifyStandardWebhooks, Respond: answer(nil)})
}

// verifyStandardWebhooks checks a request with the public Standard
// Webhooks library, and that its body is JSON.
func verifyStandardWebhooks(secret string, h http.Header, body []byte) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	if err := wh.Verify(body, h); err != nil {
		return err
	}
	if !json.Valid(body) {
		return errors.New("the body is not JSON")
	}
	return nil
}

// answer answers with the status f returns for the n-th request of an
// event (n counts from 1) with its JSON body, 200 when f is nil, and the
// body "answered <status>".
func answer(f func(n int, body map[string]any) int) heraldtest.RespondFunc {
	return func(w http.ResponseWriter, _ *http.Request, req *heraldtest.Request) {
		status := http.StatusOK
		if f != nil {
			var body map[string]any
			json.Unmarshal(req.Body, &body)
			status = f(req.Seen, body)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "answered %d", status)
	}
}

// jsonBody returns a request's body decoded.
func jsonBody(t testing.TB, r heraldtest.Request) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body of %s: %v", r.ID, err)
	}
	return m
}

// delivered returns the ids of the events recv has answered 2xx.
func delivered(recv *heraldtest.Receiver) map[string]bool {
	out := map[string]bool{}
	for id := range recv.Delivered() {
		out[id] = true
	}
	return out
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

// hold is a heraldtest.RespondFunc that holds each request until the gate
// opens, then answers as answer(nil) does, or the sender goes away,
// leaving it unanswered.
func (g *gate) hold(w http.ResponseWriter, r *http.Request, req *heraldtest.Request) {
	if g.wait(r.Context()) {
		answer(nil)(w, r, req)
	}
}

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
