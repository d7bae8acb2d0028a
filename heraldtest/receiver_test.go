package heraldtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/signature"
)

// post sends body to url as Herald would: signed with secrets (none: no
// signature headers), webhook-id id, and returns the answer's status and
// body.
func post(t *testing.T, client *http.Client, url, id string, body string, secrets ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) > 0 {
		now := time.Now()
		sig, err := signature.SignAll(secrets, id, now, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(signature.HeaderID, id)
		req.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(signature.HeaderSignature, sig)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// b64 makes a secret's key part.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Every request is verified against the secrets of its path, recorded,
// and a repeated webhook-id at the same path counted as a duplicate; one
// that does not verify is refused 401, counted, and never delivered.
func TestReceiverVerifiesRecordsAndCounts(t *testing.T) {
	secret, other := "whsec_"+b64("receiver-secret-1"), "whsec_"+b64("receiver-secret-2")
	rc := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{Secrets: []string{secret}})

	if code, _ := post(t, nil, rc.URL+"/hook?x=1", "evt_1", `{"n":1}`, secret); code != 200 {
		t.Fatalf("a signed request: %d, want 200", code)
	}
	if code, _ := post(t, nil, rc.URL+"/hook", "evt_1", `{"n":1}`, secret); code != 200 {
		t.Fatalf("the same event again: %d, want 200", code)
	}
	// The same event id at another path is another webhook's delivery.
	if code, _ := post(t, nil, rc.URL+"/other", "evt_1", `{"n":1}`, secret); code != 200 {
		t.Fatalf("the event at another path: %d, want 200", code)
	}
	if code, body := post(t, nil, rc.URL+"/hook", "evt_2", `{"n":2}`, other); code != 401 || !strings.Contains(body, "signature") {
		t.Fatalf("a request signed with another secret: %d %q, want 401 naming the signature", code, body)
	}
	if code, _ := post(t, nil, rc.URL+"/hook", "evt_3", `{"n":3}`); code != 401 {
		t.Fatalf("an unsigned request: %d, want 401", code)
	}

	got := rc.Requests()
	if len(got) != 5 || rc.Count() != 5 {
		t.Fatalf("recorded %d requests, counted %d, want 5", len(got), rc.Count())
	}
	first := got[0]
	if first.N != 1 || first.Path != "/hook" || first.Query != "x=1" || string(first.Body) != `{"n":1}` || first.ID != "evt_1" ||
		!first.Verified || first.SignatureErr != nil || first.Seen != 1 || first.Status != 200 || first.Header.Get(signature.HeaderSignature) == "" {
		t.Errorf("first request recorded as %+v", first)
	}
	if got[1].Seen != 2 || got[2].Seen != 1 {
		t.Errorf("Seen: %d at /hook the second time, %d at /other; want 2 and 1", got[1].Seen, got[2].Seen)
	}
	if !errors.Is(got[3].SignatureErr, signature.ErrNoMatch) || got[3].Verified || got[3].Seen != 0 || got[3].Status != 401 {
		t.Errorf("wrong secret recorded as %+v", got[3])
	}
	if !errors.Is(got[4].SignatureErr, signature.ErrMissingHeaders) {
		t.Errorf("unsigned request: SignatureErr %v, want ErrMissingHeaders", got[4].SignatureErr)
	}
	if d, f := rc.Duplicates(), rc.SignatureFailures(); d != 1 || f != 2 {
		t.Errorf("duplicates %d, signature failures %d; want 1 and 2", d, f)
	}
	delivered := rc.Delivered()
	if len(delivered) != 1 || delivered["evt_1"].N != 1 {
		t.Errorf("delivered %v, want evt_1 by its first request", delivered)
	}
	if last, ok := rc.Last(); !ok || last.N != 5 {
		t.Errorf("Last = %+v, %t", last, ok)
	}
}

// During a rotation a request signed with both secrets verifies with
// either; per-path secrets keep each webhook to its own.
func TestReceiverSecretsPerPathAndRotation(t *testing.T) {
	oldS, newS, bS := "whsec_"+b64("old-secret-0001"), "whsec_"+b64("new-secret-0002"), "whsec_"+b64("b-secret-00003")
	rc := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{})
	rc.SetSecrets(oldS)
	rc.SetPathSecrets("/b", bS)
	if code, _ := post(t, nil, rc.URL+"/a", "evt_1", `{}`, newS, oldS); code != 200 {
		t.Fatalf("signed with new and old, receiver on old: %d", code)
	}
	rc.SetSecrets(newS)
	if code, _ := post(t, nil, rc.URL+"/a", "evt_2", `{}`, newS, oldS); code != 200 {
		t.Fatalf("signed with new and old, receiver on new: %d", code)
	}
	if code, _ := post(t, nil, rc.URL+"/b", "evt_3", `{}`, newS); code != 401 {
		t.Fatalf("/b signed with /a's secret: %d, want 401", code)
	}
	if code, _ := post(t, nil, rc.URL+"/b", "evt_4", `{}`, bS); code != 200 {
		t.Fatalf("/b signed with its own secret: %d", code)
	}
}

// Without a secret a receiver answers unverified, unless it is strict.
func TestReceiverWithoutSecret(t *testing.T) {
	lax := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{})
	if code, _ := post(t, nil, lax.URL, "", `{}`); code != 200 {
		t.Fatalf("lax receiver, no secret: %d, want 200", code)
	}
	if r, _ := lax.Last(); r.Verified || r.SignatureErr != nil || lax.SignatureFailures() != 0 {
		t.Errorf("lax receiver recorded %+v", r)
	}
	strict := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{Strict: true})
	if code, _ := post(t, nil, strict.URL, "evt_1", `{}`, "whsec_"+b64("any-secret-0001")); code != 401 {
		t.Fatalf("strict receiver, no secret: %d, want 401", code)
	}
	if r, _ := strict.Last(); !errors.Is(r.SignatureErr, heraldtest.ErrNoSecret) || strict.SignatureFailures() != 1 {
		t.Errorf("strict receiver recorded %+v", r)
	}
}

// The receiver answers as told: a fixed Answer, a function per request,
// a delay the client may give up on (recorded as no answer).
func TestReceiverAnswers(t *testing.T) {
	rc := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{
		Respond: heraldtest.Answer{Status: 503, RetryAfter: 90 * time.Second, Body: "busy"}.Respond})
	resp, err := http.Post(rc.URL, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "90" || string(b) != "busy" {
		t.Fatalf("answer %d, Retry-After %q, body %q", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}

	rc.SetRespond(func(w http.ResponseWriter, _ *http.Request, req *heraldtest.Request) {
		if req.N%2 == 0 {
			w.WriteHeader(http.StatusGone)
		}
	})
	if code, _ := post(t, nil, rc.URL, "", `{}`); code != 410 {
		t.Errorf("second request: %d, want 410", code)
	}
	if code, _ := post(t, nil, rc.URL, "", `{}`); code != 200 {
		t.Errorf("third request: %d, want 200 (the func wrote nothing)", code)
	}

	rc.SetAnswer(heraldtest.Answer{Delay: time.Hour})
	client := &http.Client{Timeout: 200 * time.Millisecond}
	if _, err := client.Post(rc.URL, "application/json", strings.NewReader(`{}`)); err == nil {
		t.Fatal("a request held an hour was answered within 200ms")
	}
	rc.WaitFor(t, 10*time.Second, "the held request to end", func() bool {
		r, _ := rc.Last()
		return r.N == 4 && r.Status == 0 && rc.MaxInFlight() >= 1
	})
	if got := rc.Requests(); got[0].Status != 503 || got[1].Status != 410 || got[2].Status != 200 {
		t.Errorf("statuses recorded: %d %d %d", got[0].Status, got[1].Status, got[2].Status)
	}
}

// Over mutual TLS the receiver records the client certificate's name, and
// a client without one from the CA gets no answer at all.
func TestReceiverMutualTLS(t *testing.T) {
	ca := heraldtest.NewCA(t)
	rc := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{TLS: ca.ServerTLS(t, tls.RequireAndVerifyClientCert)})
	if !strings.HasPrefix(rc.URL, "https://127.0.0.1:") {
		t.Fatalf("URL %s", rc.URL)
	}
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs}}}
	}
	if code, _ := post(t, client(ca.Issue(t, "client-a").TLS), rc.URL, "", `{}`); code != 200 {
		t.Fatalf("with a client certificate: %d", code)
	}
	if _, err := client().Post(rc.URL, "application/json", strings.NewReader(`{}`)); err == nil {
		t.Fatal("a client without a certificate was answered")
	}
	if got := rc.Requests(); len(got) != 1 || got[0].ClientCert != "client-a" {
		t.Fatalf("requests %+v, want one from client-a", got)
	}
}

// Forget keeps no request but every count.
func TestReceiverForget(t *testing.T) {
	secret := "whsec_" + b64("forget-secret-01")
	var mu sync.Mutex
	var seen []int
	rc := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{Forget: true, Secrets: []string{secret},
		Respond: func(_ http.ResponseWriter, _ *http.Request, req *heraldtest.Request) {
			mu.Lock()
			seen = append(seen, req.Seen)
			mu.Unlock()
		}})
	post(t, nil, rc.URL, "evt_1", `{}`, secret)
	post(t, nil, rc.URL, "evt_1", `{}`, secret)
	post(t, nil, rc.URL, "evt_2", `{}`)
	if len(rc.Requests()) != 0 || len(rc.Delivered()) != 0 || rc.Count() != 3 || rc.Duplicates() != 1 || rc.SignatureFailures() != 1 {
		t.Errorf("kept %d, delivered %d, counted %d, duplicates %d, failures %d", len(rc.Requests()), len(rc.Delivered()),
			rc.Count(), rc.Duplicates(), rc.SignatureFailures())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != 1 || seen[1] != 2 {
		t.Errorf("Respond saw Seen %v, want [1 2]", seen)
	}
}

// Waits end as soon as what they wait for holds, and say so when it never
// does.
func TestReceiverWaits(t *testing.T) {
	secret := "whsec_" + b64("wait-secret-0001")
	rc := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{Secrets: []string{secret}})
	go func() {
		time.Sleep(50 * time.Millisecond)
		post(t, nil, rc.URL, "evt_1", `{}`, secret)
		post(t, nil, rc.URL, "evt_2", `{}`, secret)
	}()
	rc.WaitDelivered(t, 10*time.Second, "evt_1", "evt_2")
	rc.WaitCount(t, 2, time.Second)
	if err := rc.Wait(100*time.Millisecond, func() bool { return rc.Count() > 2 }); err == nil {
		t.Fatal("Wait for a third request returned nil")
	}
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); rc.WaitDelivered(ft, 100*time.Millisecond, "evt_1", "evt_9") }()
	<-done
	if !strings.Contains(ft.msg, "1 of 2 events never arrived") {
		t.Errorf("WaitDelivered failed with %q, want it to count what is missing", ft.msg)
	}
}

// fatalTB records a Fatalf and ends the goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// A receiver listens on loopback only.
func TestReceiverOnLoopbackOnly(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "10.0.0.1", "example.com", "::"} {
		if rc, err := heraldtest.StartReceiver(heraldtest.ReceiverConfig{Host: host}); err == nil {
			rc.Close()
			t.Errorf("a receiver started on %s", host)
		}
	}
	rc, err := heraldtest.StartReceiver(heraldtest.ReceiverConfig{Host: "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if !strings.HasPrefix(rc.URL, "http://127.0.0.2:") {
		t.Errorf("URL %s", rc.URL)
	}
}

// Close ends held requests and returns.
func TestReceiverCloseEndsHeldRequests(t *testing.T) {
	rc, err := heraldtest.StartReceiver(heraldtest.ReceiverConfig{Respond: heraldtest.Hang})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := http.Post(rc.URL, "application/json", bytes.NewReader([]byte(`{}`)))
		errc <- err
	}()
	if err := rc.Wait(10*time.Second, func() bool { return rc.Count() == 1 }); err != nil {
		t.Fatal("the request never arrived")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closed := make(chan struct{})
	go func() { rc.Close(); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close did not return within 5s")
	}
	if err := <-errc; err == nil {
		t.Error("the held request got an answer")
	}
}

// A body over MaxBody is refused 413 and not recorded, whether its length
// is announced or not.
func TestReceiverMaxBody(t *testing.T) {
	rc := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{MaxBody: 16})
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(strings.Repeat("x", 17))
		if chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		resp, err := http.Post(rc.URL, "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("17 bytes (chunked %t): %d, want 413", chunked, resp.StatusCode)
		}
	}
	resp, err := http.Post(rc.URL, "application/json", io.MultiReader(strings.NewReader(strings.Repeat("y", 16))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r, ok := rc.Last(); resp.StatusCode != 200 || !ok || string(r.Body) != strings.Repeat("y", 16) || rc.Count() != 1 {
		t.Errorf("16 bytes chunked: %d, recorded %q of %d requests", resp.StatusCode, r.Body, rc.Count())
	}
}
