package dispatch_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/dispatch"
)

// loopbackServer accepts connections on 127.0.0.1 and hands each to
// handle, for receivers that misbehave below HTTP.
func loopbackServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// readRequestHead reads a request's line and headers.
func readRequestHead(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil || line == "\r\n" {
			return
		}
	}
}

// TestAttemptErrorsSayWhatHappened checks the words an attempt records
// (and the test action shows) for each way a receiver can fail below
// HTTP: what the receiver's developer reads instead of Go's error text.
func TestAttemptErrorsSayWhatHappened(t *testing.T) {
	db, _ := mustStore(t)
	e, err := dispatch.New(testConfig(t, db))
	if err != nil {
		t.Fatal(err)
	}

	reset := loopbackServer(t, func(c net.Conn) {
		readRequestHead(c)
		c.(*net.TCPConn).SetLinger(0) // close with RST
		c.Close()
	})
	hangUp := loopbackServer(t, func(c net.Conn) {
		readRequestHead(c)
		c.Close()
	})
	notTLS := loopbackServer(t, func(c net.Conn) {
		c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n")) // answers the TLS hello with something else
		c.Close()
	})
	badCert := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})) // self-signed, not trusted
	t.Cleanup(badCert.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(plain.Close)

	for _, tc := range []struct {
		name, url string
		want      []string // the error is one of these, or starts with one ending in ": "
	}{
		{"reset", "http://" + reset + "/hook", []string{"connection reset by the receiver"}},
		{"closed without answering", "http://" + hangUp + "/hook", []string{"the receiver closed the connection without answering"}},
		{"untrusted certificate", badCert.URL + "/hook", []string{"the receiver's TLS certificate is not signed by an authority Herald trusts (self-signed?): use a certificate from a public CA, or give Herald its CA with --destination-ca-file"}},
		{"https to a plain HTTP server", "https://" + strings.TrimPrefix(plain.URL, "http://") + "/hook",
			[]string{"the receiver did not answer with TLS (an https:// URL pointing at a plain-HTTP server?)"}},
		{"https to a server that speaks something else", "https://" + notTLS + "/hook",
			[]string{"the receiver did not answer with TLS (an https:// URL pointing at a plain-HTTP server?)"}},
		// A .invalid name never resolves (RFC 6761): nothing is sent.
		{"unknown host", "http://herald-test.invalid/hook", []string{"host name herald-test.invalid not found (DNS)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &herald.Webhook{Tenant: tenant, Instance: instance, Name: "wh-try", TimeoutSeconds: 10, URL: tc.url,
				Payload: herald.PayloadConfig{Format: herald.FormatWelkin, PredefinedFields: herald.DefaultPredefinedFields}}
			a, err := e.TestWebhook(context.Background(), w, []string{herald.NewSigningSecret()})
			if err != nil {
				t.Fatal(err)
			}
			ok := false
			for _, want := range tc.want {
				ok = ok || a.Error == want || strings.HasSuffix(want, ": ") && strings.HasPrefix(a.Error, want)
			}
			if !ok || a.StatusCode != 0 {
				t.Errorf("attempt error %q (status %d), want %q", a.Error, a.StatusCode, tc.want)
			}
			if strings.Contains(a.Error, "Post \"") || strings.Contains(a.Error, "dial tcp") {
				t.Errorf("attempt error %q quotes Go's error text", a.Error)
			}
		})
	}
}
