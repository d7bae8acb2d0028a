package dispatch_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/heraldtest"
)

// newMTLSReceiver is the kit's receiver over HTTPS on 127.0.0.1, with a
// certificate from ca, asking for a client certificate from ca as
// clientAuth says.
func newMTLSReceiver(t *testing.T, ca *heraldtest.CA, clientAuth tls.ClientAuthType) *heraldtest.Receiver {
	t.Helper()
	return heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{TLS: ca.ServerTLS(t, clientAuth)})
}

// clientCerts returns the common name of the client certificate each
// request to rc came with ("" for none), in order.
func clientCerts(rc *heraldtest.Receiver) []string {
	var cns []string
	for _, r := range rc.Requests() {
		cns = append(cns, r.ClientCert)
	}
	return cns
}

func tlsWebhook(id, url string, pair *heraldtest.Pair) *herald.Webhook {
	w := &herald.Webhook{ID: id, Tenant: tenant, Instance: instance, Name: id, URL: url, TimeoutSeconds: 5,
		Payload: herald.PayloadConfig{Format: herald.FormatWelkin, PredefinedFields: herald.DefaultPredefinedFields}}
	if pair != nil {
		w.ClientCertificate, w.ClientKey = string(pair.CertPEM), herald.PrivateKeyPEM(pair.KeyPEM)
	}
	return w
}

// Each webhook presents its own client certificate, on connections of its
// own: a connection opened with one webhook's certificate never carries
// another webhook's request, nor one of a webhook without a certificate.
func TestClientCertificatePerWebhook(t *testing.T) {
	ca := heraldtest.NewCA(t)
	rc := newMTLSReceiver(t, ca, tls.RequireAndVerifyClientCert)
	db, _ := mustStore(t)
	cfg := testConfig(t, db)
	cfg.RootCAs = ca.Pool()
	e, err := dispatch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pairA, pairB := ca.Issue(t, "client-a"), ca.Issue(t, "client-b")
	a, b := tlsWebhook("wh_a", rc.URL, &pairA), tlsWebhook("wh_b", rc.URL, &pairB)
	none := tlsWebhook("wh_none", rc.URL, nil)
	send := func(w *herald.Webhook) *herald.Attempt {
		t.Helper()
		att, err := e.TestWebhook(context.Background(), w, []string{herald.NewSigningSecret()})
		if err != nil {
			t.Fatal(err)
		}
		return att
	}
	for _, w := range []*herald.Webhook{a, b, a, b, a} {
		if att := send(w); att.StatusCode != 200 || att.Error != "" {
			t.Fatalf("%s: attempt %+v, want 200", w.ID, att)
		}
	}
	if got, want := strings.Join(clientCerts(rc), " "), "client-a client-b client-a client-b client-a"; got != want {
		t.Fatalf("receiver saw client certificates %q, want %q", got, want)
	}

	att := send(none)
	if att.StatusCode != 0 || !strings.Contains(att.Error, "the receiver asks for a TLS client certificate and this webhook has none") ||
		!strings.Contains(att.Error, "clientCertificate and clientKey") {
		t.Errorf("webhook without a certificate: attempt %+v, want an error saying it has none", att)
	}

	// A new pair on the same webhook is used from its next request on.
	pairA2 := ca.Issue(t, "client-a2")
	a.ClientCertificate, a.ClientKey = string(pairA2.CertPEM), herald.PrivateKeyPEM(pairA2.KeyPEM)
	if att := send(a); att.StatusCode != 200 {
		t.Fatalf("after the new pair: attempt %+v", att)
	}
	if seen := clientCerts(rc); seen[len(seen)-1] != "client-a2" {
		t.Errorf("after the new pair the receiver saw %q, want client-a2", seen[len(seen)-1])
	}

	// A certificate the receiver does not trust is refused, in words.
	other := heraldtest.NewCA(t).Issue(t, "stranger")
	if att := send(tlsWebhook("wh_x", rc.URL, &other)); !strings.Contains(att.Error, "the receiver refused this webhook's TLS client certificate") {
		t.Errorf("untrusted client certificate: attempt %+v", att)
	}
}

// The receiver's certificate is checked against Config.RootCAs: without
// the test CA there, the same request fails.
func TestRootCAs(t *testing.T) {
	ca := heraldtest.NewCA(t)
	rc := newMTLSReceiver(t, ca, tls.NoClientCert)
	db, _ := mustStore(t)
	e, err := dispatch.New(testConfig(t, db))
	if err != nil {
		t.Fatal(err)
	}
	att, err := e.TestWebhook(context.Background(), tlsWebhook("wh", rc.URL, nil), nil)
	if err != nil || !strings.Contains(att.Error, "is not signed by an authority Herald trusts") {
		t.Errorf("without the CA: attempt %+v, %v; want the certificate refused", att, err)
	}
	cfg := testConfig(t, db)
	cfg.RootCAs = ca.Pool()
	e, err = dispatch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if att, err := e.TestWebhook(context.Background(), tlsWebhook("wh", rc.URL, nil), nil); err != nil || att.StatusCode != 200 {
		t.Errorf("with the CA: attempt %+v, %v; want 200", att, err)
	}
}

// With RequireHTTPS an http:// URL, stored before or after, is not sent
// to: the attempt says why. https:// goes through.
func TestRequireHTTPS(t *testing.T) {
	plain := newReceiver(t, nil)
	ca := heraldtest.NewCA(t)
	secure := newMTLSReceiver(t, ca, tls.NoClientCert)
	db, _ := mustStore(t, hook{name: "wh-plain", url: plain.URL})
	cfg := testConfig(t, db)
	cfg.RequireHTTPS, cfg.RootCAs = true, ca.Pool()
	e, _ := mustRun(t, cfg)

	mustCreateEvents(t, e, 1)
	d := waitStatus(t, db, "wh-plain", 1, 10*time.Second, herald.StatusRetrying)[0]
	want := "the webhook URL is http://, and this Herald sends only to https:// URLs (--require-https-destinations); nothing was sent: change the URL to https://"
	if a := d.Attempts[0]; a.Error != want || a.StatusCode != 0 {
		t.Errorf("delivery attempt %+v, want error %q", a, want)
	}
	att, err := e.TestWebhook(context.Background(), tlsWebhook("wh", plain.URL, nil), nil)
	if err != nil || att.Error != want {
		t.Errorf("test attempt %+v, %v; want error %q", att, err, want)
	}
	if plain.Count() != 0 {
		t.Errorf("the http:// receiver got %d requests", plain.Count())
	}
	if att, err := e.TestWebhook(context.Background(), tlsWebhook("wh", secure.URL, nil), nil); err != nil || att.StatusCode != 200 {
		t.Errorf("https:// test attempt %+v, %v; want 200", att, err)
	}
}

// The clients kept for webhooks with a certificate are bounded; the one
// used longest ago goes first, and a webhook whose pair changed gets a new
// client in place of its old one. Nothing is dialed.
func TestCertClientsBounded(t *testing.T) {
	db, _ := mustStore(t)
	e, err := dispatch.New(testConfig(t, db))
	if err != nil {
		t.Fatal(err)
	}
	ca := heraldtest.NewCA(t)
	pair := ca.Issue(t, "client")
	client := func(id string, p *heraldtest.Pair) any {
		t.Helper()
		c, err := dispatch.ClientFor(e, tlsWebhook(id, "https://127.0.0.1/", p))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	plain := client("wh_plain", nil)
	first := client("wh_0", &pair)
	if first == plain || client("wh_1", &pair) == first {
		t.Fatal("a webhook with a certificate shares a client with another webhook")
	}
	for i := 2; i < dispatch.MaxCertClients+50; i++ {
		client(fmt.Sprint("wh_", i), &pair)
		if i%10 == 0 {
			client("wh_0", &pair) // keep wh_0 recently used
		}
	}
	if n := dispatch.CertClients(e); n != dispatch.MaxCertClients {
		t.Errorf("%d clients kept, want the bound %d", n, dispatch.MaxCertClients)
	}
	if client("wh_0", &pair) != first {
		t.Error("the recently used client of wh_0 was evicted")
	}
	if client("wh_1", &pair) == nil || dispatch.CertClients(e) != dispatch.MaxCertClients {
		t.Error("making an evicted client again went past the bound")
	}
	other := ca.Issue(t, "client-2")
	if client("wh_0", &other) == first || dispatch.CertClients(e) != dispatch.MaxCertClients {
		t.Error("a new pair did not replace the webhook's client in place")
	}
	bad := tlsWebhook("wh_bad", "https://127.0.0.1/", &pair)
	bad.ClientKey = herald.PrivateKeyPEM(other.KeyPEM)
	if _, err := dispatch.ClientFor(e, bad); err == nil || !strings.Contains(err.Error(), "client certificate and key could not be loaded") {
		t.Errorf("mismatched pair: %v", err)
	}
}
