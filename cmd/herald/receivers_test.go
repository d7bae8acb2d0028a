package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/signature"
)

// TestReceiverExamples runs the receivers in docs/receivers, as a reader
// would, against a real Herald: each takes every event once, refuses a
// request whose signature does not verify, and takes a repeated request
// once. The Node.js one is skipped, visibly, where node is not installed.
func TestReceiverExamples(t *testing.T) {
	root := filepath.Join("..", "..")
	t.Run("go", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "receiver")
		build := exec.Command("go", "build", "-o", bin, "./docs/receivers/go")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./docs/receivers/go: %v\n%s", err, out)
		}
		tryReceiver(t, bin)
	})
	t.Run("node", func(t *testing.T) {
		node, err := exec.LookPath("node")
		if err != nil {
			t.Skip("node is not installed: the Node.js receiver was not tried")
		}
		dir := filepath.Join(root, "docs", "receivers", "node")
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks")); err != nil {
			t.Fatalf("the Node.js receiver needs its packages: npm ci --prefix docs/receivers/node (.ci/run does it): %v", err)
		}
		tryReceiver(t, node, filepath.Join(dir, "receiver.js"))
	})
}

// tryReceiver starts the receiver command, points a webhook of a real
// Herald at it, and checks what it takes.
func tryReceiver(t *testing.T, command ...string) {
	p := startHerald(t, nil, "--database", "sqlite:"+filepath.Join(t.TempDir(), "herald.db"), "--allow-private-destinations")
	c := p.client(t)
	inst, secret := setupWebhook(t, c, "http://127.0.0.1:9/unused")

	out := &syncBuffer{}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(), "HERALD_WEBHOOK_SECRET="+secret, "LISTEN=127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var url string
	waitOutput(t, out, func(s string) bool {
		m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(s)
		if m != nil {
			url = m[1] + "/hooks"
		}
		return m != nil
	})
	mustDo(t, c, "PATCH", inst+"/webhooks/wh-patient-sync", map[string]any{"url": url}, nil)

	var ids []string
	for i := range 5 {
		var res struct{ EventID string }
		mustDo(t, c, "POST", inst+"/events", map[string]any{"eventEntity": "PATIENT", "eventSubtype": "PATIENT_CREATED",
			"sourceId": "p-" + strconv.Itoa(i), "patientId": "p-" + strconv.Itoa(i)}, &res)
		ids = append(ids, res.EventID)
	}
	waitOutput(t, out, func(s string) bool {
		for _, id := range ids {
			if !strings.Contains(s, "received "+id+" PATIENT_CREATED\n") {
				return false
			}
		}
		return true
	})

	post := func(id, sig string) int {
		body := []byte(`{"eventId":"` + id + `","eventSubtype":"PATIENT_UPDATED"}`)
		req, _ := http.NewRequestWithContext(context.Background(), "POST", url, bytes.NewReader(body))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
		if sig == "" {
			var err error
			if sig, err = signature.Sign(secret, id, time.Now(), body); err != nil {
				t.Fatal(err)
			}
		}
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("evt_forged", "v1,"+strings.Repeat("A", 43)+"="); code != http.StatusUnauthorized {
		t.Errorf("a forged signature: %d, want 401", code)
	}
	for range 2 {
		if code := post("evt_twice", ""); code != http.StatusNoContent {
			t.Errorf("a signed request: %d, want 204", code)
		}
	}
	waitOutput(t, out, func(s string) bool { return strings.Contains(s, "received evt_twice PATIENT_UPDATED\n") })
	time.Sleep(200 * time.Millisecond) // a second line would come now
	s := out.String()
	if n := strings.Count(s, "received evt_twice "); n != 1 {
		t.Errorf("the same webhook-id taken %d times, want once:\n%s", n, s)
	}
	if strings.Contains(s, "evt_forged") {
		t.Errorf("the receiver took a forged request:\n%s", s)
	}
	for _, id := range ids {
		if n := strings.Count(s, "received "+id+" "); n != 1 {
			t.Errorf("%s taken %d times, want once", id, n)
		}
	}
}

// waitOutput waits up to 15 s for done to accept the output so far.
func waitOutput(t *testing.T, out *syncBuffer, done func(string) bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !done(out.String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprintf("the receiver did not print what was expected within 15s; it printed:\n%s", out))
		}
	}
}
