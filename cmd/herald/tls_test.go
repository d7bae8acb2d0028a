package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
)

// httpsClient returns a client that trusts only ca and follows no
// redirects.
func httpsClient(ca *heraldtest.CA) *http.Client {
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// get fetches url with hc and reports the answer, whether the connection
// was an idle one reused, and the common name of the server's certificate.
func get(t *testing.T, hc *http.Client, url string) (resp *http.Response, reused bool, cn string) {
	t.Helper()
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		cn = resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	return resp, reused, cn
}

// `serve --tls-cert --tls-key` serves HTTPS only, with HSTS and Secure
// cookies, and takes a new certificate on SIGHUP without dropping the
// connections it has; a pair that does not load leaves the old one.
func TestServeHTTPS(t *testing.T) {
	ca := heraldtest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.Issue(t, "herald-1", "127.0.0.1", "localhost").WriteFiles(t, dir)
	p := startHerald(t, nil, "--database", "sqlite:"+filepath.Join(t.TempDir(), "herald.db"), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(p.URL, "https://127.0.0.1:") {
		t.Fatalf("serve printed %q, want an https:// URL", p.URL)
	}
	port := p.URL[strings.LastIndex(p.URL, ":")+1:]

	kept := httpsClient(ca) // its connection lives through the reload
	resp, _, cn := get(t, kept, p.URL+"/healthz")
	if resp.StatusCode != 200 || cn != "herald-1" || resp.Header.Get("Strict-Transport-Security") != "max-age=31536000; includeSubDomains" {
		t.Fatalf("GET /healthz: %d, certificate %q, HSTS %q", resp.StatusCode, cn, resp.Header.Get("Strict-Transport-Security"))
	}
	if resp, _, _ := get(t, httpsClient(ca), "https://localhost:"+port+"/readyz"); resp.StatusCode != 200 {
		t.Fatalf("GET https://localhost/readyz: %d", resp.StatusCode)
	}
	resp, _, _ = get(t, kept, p.URL+"/ui/signin")
	var pre *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "herald_pre" {
			pre = c
		}
	}
	if resp.StatusCode != 200 || pre == nil || !pre.Secure || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("GET /ui/signin: %d, cookie %v, HSTS %q; want a Secure herald_pre cookie and HSTS", resp.StatusCode, pre, resp.Header.Get("Strict-Transport-Security"))
	}
	if resp, err := http.Get("http://127.0.0.1:" + port + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP to the HTTPS port got a 200")
		}
	}

	// A new pair, then SIGHUP: new connections get it...
	ca.Issue(t, "herald-2", "127.0.0.1", "localhost").WriteFiles(t, dir)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "a new connection sees the new certificate", func() bool {
		_, _, cn := get(t, httpsClient(ca), p.URL+"/healthz")
		return cn == "herald-2"
	})
	// ...while the connection opened before goes on with the old one.
	resp, reused, cn := get(t, kept, p.URL+"/healthz")
	if resp.StatusCode != 200 || !reused || cn != "herald-1" {
		t.Fatalf("the keep-alive connection after the reload: %d, reused %t, certificate %q; want 200 on the old connection", resp.StatusCode, reused, cn)
	}

	// A pair that does not load is logged and changes nothing.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "the failed reload logged", func() bool {
		return strings.Contains(p.logs.String(), "could not reload the TLS certificate; still serving the previous one")
	})
	if _, _, cn := get(t, httpsClient(ca), p.URL+"/healthz"); cn != "herald-2" {
		t.Fatalf("after a failed reload a new connection sees %q, want herald-2", cn)
	}
}

// Bad TLS and destination settings stop `serve` at once with a message
// that names the setting.
func TestServeRefusesBadTLSAndDestinationSettings(t *testing.T) {
	dir := t.TempDir()
	ca := heraldtest.NewCA(t)
	certFile, keyFile := ca.Issue(t, "herald", "127.0.0.1").WriteFiles(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"cert without key", []string{"--tls-cert", certFile}, nil, "--tls-cert and --tls-key go together"},
		{"key without cert", nil, []string{"HERALD_TLS_KEY=" + keyFile}, "--tls-cert and --tls-key go together"},
		{"files that do not load", []string{"--tls-cert", missing, "--tls-key", keyFile}, nil, "--tls-cert " + missing + " and --tls-key " + keyFile + ": cannot load"},
		{"key of another certificate", []string{"--tls-cert", certFile, "--tls-key", notPEM}, nil, "cannot load the certificate and its key"},
		{"public URL not absolute", []string{"--public-url", "herald.example.com"}, nil, "--public-url must be the absolute http:// or https:// URL"},
		{"public URL http while serving TLS", []string{"--tls-cert", certFile, "--tls-key", keyFile, "--public-url", "http://herald.example.com"}, nil, "write it with https://"},
		{"destination with host bits", []string{"--allow-destination", "10.0.0.1/8"}, nil, "write the range as 10.0.0.0/8"},
		{"destination not a range", nil, []string{"HERALD_ALLOW_DESTINATIONS=127.0.0.1/32,intranet"}, "HERALD_ALLOW_DESTINATIONS: \"intranet\" is neither a CIDR range"},
		{"CA file missing", []string{"--destination-ca-file", missing}, nil, "--destination-ca-file: open " + missing},
		{"CA file without certificates", []string{"--destination-ca-file", notPEM}, nil, "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"serve", "--listen", "127.0.0.1:0", "--database", "sqlite:" + filepath.Join(t.TempDir(), "herald.db")}, tc.args...)
			cmd := exec.CommandContext(ctx, heraldBin, args...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("herald %s: %v, want exit 2 saying %q:\n%s", strings.Join(args, " "), err, tc.want, out)
			}
		})
	}
}

// addWebhook creates webhook name (PATIENT_CREATED) in acme's designer,
// publishes it, sets url and the extra settings, and activates it.
func addWebhook(t *testing.T, c *apiClient, inst, name, url string, settings map[string]any) {
	t.Helper()
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/webhooks", map[string]any{
		"name": name, "title": name, "triggers": []map[string]string{{"eventSubtype": "PATIENT_CREATED"}}}, nil)
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/publish", map[string]any{"comment": "add " + name}, nil)
	body := map[string]any{"url": url}
	for k, v := range settings {
		body[k] = v
	}
	mustDo(t, c, "PATCH", inst+"/webhooks/"+name, body, nil)
	mustDo(t, c, "POST", inst+"/webhooks/"+name+"/activate", nil, nil)
}

// firstAttemptError waits for the first attempt of webhook's delivery and
// returns its error.
func firstAttemptError(t *testing.T, c *apiClient, inst, webhook string) string {
	t.Helper()
	var full delivery
	waitUntil(t, 30*time.Second, "an attempt of "+webhook+" on record", func() bool {
		if dl := listDeliveries(t, c, inst, "webhook="+webhook); len(dl) == 1 {
			mustDo(t, c, "GET", inst+"/deliveries/"+dl[0].ID, nil, &full)
		}
		return len(full.Attempts) > 0
	})
	return full.Attempts[0].Error
}

// --allow-destination opens just its range: with 127.0.0.1/32 a receiver
// on 127.0.0.1 gets its delivery and one on 127.0.0.2 is refused, with an
// attempt error naming the rule.
func TestAllowDestination(t *testing.T) {
	p := startHerald(t, nil, "--database", "sqlite:"+filepath.Join(t.TempDir(), "herald.db"), "--allow-destination", "127.0.0.1/32")
	c := p.client(t)
	allowed, outside := newReceiver(t), newReceiverOn(t, "127.0.0.2")
	inst, secret := setupWebhook(t, c, allowed.URL+"/hook")
	allowed.SetSecrets(secret)
	addWebhook(t, c, inst, "wh-outside", outside.URL+"/hook", nil)

	var res struct{ EventID string }
	mustDo(t, c, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "p1"}, &res)
	allowed.WaitDelivered(t, 30*time.Second, res.EventID)
	want := "destination 127.0.0.2 is a loopback address outside the allowed ranges (127.0.0.1/32)"
	if e := firstAttemptError(t, c, inst, "wh-outside"); !strings.Contains(e, want) || !strings.Contains(e, "--allow-destination") {
		t.Errorf("attempt error %q, want it to say %q and how to allow it", e, want)
	}
	if n := outside.Count(); n != 0 {
		t.Fatalf("the receiver on 127.0.0.2 got %d requests, want none", n)
	}
}

// newTLSReceiver is the kit's receiver over HTTPS on 127.0.0.1, with a
// certificate from ca, demanding a client certificate from ca (mutual
// TLS). It verifies no signature: these tests are about the connection.
func newTLSReceiver(t *testing.T, ca *heraldtest.CA) *heraldtest.Receiver {
	t.Helper()
	return heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{TLS: ca.ServerTLS(t, tls.RequireAndVerifyClientCert)})
}

// clientCerts returns the common name of the client certificate each
// request to rc came with, in order.
func clientCerts(rc *heraldtest.Receiver) []string {
	var cns []string
	for _, r := range rc.Requests() {
		cns = append(cns, r.ClientCert)
	}
	return cns
}

// --require-https-destinations refuses an http:// URL (400 naming url; an
// URL stored before the flag fails at send time, test sends too), and
// delivers over HTTPS to a receiver whose certificate comes from the CA of
// --destination-ca-file and that demands the webhook's client
// certificate; a webhook without one fails there in words.
func TestHTTPSDestinations(t *testing.T) {
	dbArgs := []string{"--database", "sqlite:" + filepath.Join(t.TempDir(), "herald.db"), "--allow-destination", "127.0.0.1/32"}
	p := startHerald(t, nil, dbArgs...)
	c := p.client(t)
	plain := newReceiver(t)
	inst, _ := setupWebhook(t, c, plain.URL+"/hook") // http://, stored before the flag
	p.stop()

	ca := heraldtest.NewCA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	p = startHerald(t, nil, append(dbArgs, "--require-https-destinations", "--destination-ca-file", caFile)...)
	c = p.client(t)
	_, err := c.do(context.Background(), "PATCH", inst+"/webhooks/wh-patient-sync", map[string]any{"url": plain.URL + "/hook"}, nil)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "url must start with https://") {
		t.Fatalf("PATCH of an http:// url: %v, want a 400 naming url", err)
	}

	recv := newTLSReceiver(t, ca)
	pair := ca.Issue(t, "wh-mtls-client")
	addWebhook(t, c, inst, "wh-mtls", recv.URL+"/hook", map[string]any{"clientCertificate": string(pair.CertPEM), "clientKey": string(pair.KeyPEM)})
	addWebhook(t, c, inst, "wh-nocert", recv.URL+"/hook", nil)
	var got map[string]any
	mustDo(t, c, "GET", inst+"/webhooks/wh-mtls", nil, &got)
	if _, leaked := got["clientKey"]; leaked || got["hasClientKey"] != true || got["clientCertificate"] != string(pair.CertPEM) {
		t.Fatalf("GET wh-mtls: clientCertificate set %t, hasClientKey %v, clientKey present %t", got["clientCertificate"] == string(pair.CertPEM), got["hasClientKey"], leaked)
	}

	var tested struct {
		Attempt struct {
			StatusCode int    `json:"statusCode"`
			Error      string `json:"error"`
		} `json:"attempt"`
	}
	mustDo(t, c, "POST", inst+"/webhooks/wh-mtls/test", nil, &tested)
	if tested.Attempt.StatusCode != 200 {
		t.Fatalf("test send of wh-mtls: %+v, want 200", tested.Attempt)
	}
	mustDo(t, c, "POST", inst+"/webhooks/wh-patient-sync/test", nil, &tested)
	if !strings.Contains(tested.Attempt.Error, "--require-https-destinations") {
		t.Fatalf("test send to the old http:// url: %+v, want it refused", tested.Attempt)
	}

	mustDo(t, c, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "p1"}, nil)
	waitUntil(t, 30*time.Second, "the delivery of wh-mtls", func() bool { return len(clientCerts(recv)) == 2 })
	for _, cn := range clientCerts(recv) {
		if cn != "wh-mtls-client" {
			t.Errorf("the receiver saw client certificate %q, want wh-mtls-client", cn)
		}
	}
	if e := firstAttemptError(t, c, inst, "wh-nocert"); !strings.Contains(e, "the receiver asks for a TLS client certificate and this webhook has none") {
		t.Errorf("wh-nocert attempt error %q, want it to say the webhook has no client certificate", e)
	}
	if e := firstAttemptError(t, c, inst, "wh-patient-sync"); !strings.Contains(e, "the webhook URL is http://") || !strings.Contains(e, "--require-https-destinations") {
		t.Errorf("wh-patient-sync attempt error %q, want the old http:// url refused", e)
	}
	if n := plain.Count(); n != 0 {
		t.Fatalf("the http:// receiver got %d requests, want none", n)
	}
}
