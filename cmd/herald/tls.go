package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// hstsValue is the Strict-Transport-Security header of every answer when
// people reach Herald over HTTPS: for a year, browsers then refuse plain
// HTTP to it and its subdomains.
const hstsValue = "max-age=31536000; includeSubDomains"

// servingCert is the certificate and key `serve` answers TLS handshakes
// with, loaded from their files at start and again on every SIGHUP. A
// handshake reads the current pair (GetCertificate); a reload swaps it,
// so connections already open keep theirs and new ones get the new pair.
type servingCert struct {
	certFile, keyFile string
	logger            *slog.Logger
	current           atomic.Pointer[tls.Certificate] // written by load, read by handshakes
}

// loadServingCert loads the pair from certFile and keyFile, or returns an
// error that names both flags and says what is wrong. Without certFile it
// returns nil: Herald serves plain HTTP.
func loadServingCert(certFile, keyFile string, logger *slog.Logger) (*servingCert, error) {
	if certFile == "" {
		return nil, nil
	}
	c := &servingCert{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("--tls-cert %s and --tls-key %s: %w", certFile, keyFile, err)
	}
	return c, nil
}

// load reads the pair from the files and makes it current. On error the
// current pair stays.
func (c *servingCert) load() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("cannot load the certificate and its key: %w", err)
	}
	leaf := pair.Leaf
	if leaf == nil { // GODEBUG=x509keypairleaf=0
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("cannot parse the certificate: %w", err)
		}
	}
	c.current.Store(&pair)
	c.logger.Info("serving HTTPS with certificate", "file", c.certFile, "subject", leaf.Subject.String(),
		"serial", leaf.SerialNumber.Text(16), "notAfter", leaf.NotAfter)
	if time.Now().After(leaf.NotAfter) {
		c.logger.Warn("the serving certificate has expired; clients will refuse it", "file", c.certFile, "notAfter", leaf.NotAfter)
	}
	return nil
}

// getCertificate is tls.Config.GetCertificate: the current pair.
func (c *servingCert) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// tlsConfig returns the server's TLS configuration: TLS 1.2 or later, with
// the current pair.
func (c *servingCert) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.getCertificate}
}

// reloadOnSIGHUP takes SIGHUP from now on (instead of letting it end the
// process), and loads the pair again on each, in a goroutine counted in
// wg, until ctx is done. A pair that does not load is logged as an error,
// and the current one stays in use.
func (c *servingCert) reloadOnSIGHUP(ctx context.Context, wg *sync.WaitGroup) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wg.Go(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := c.load(); err != nil {
					c.logger.Error("SIGHUP: could not reload the TLS certificate; still serving the previous one",
						"certFile", c.certFile, "keyFile", c.keyFile, "err", err)
				}
			}
		}
	})
}

// withHSTS sets Strict-Transport-Security on every answer of h.
func withHSTS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hstsValue)
		h.ServeHTTP(w, r)
	})
}

// checkPublicURL returns an error unless raw is "" or an absolute http://
// or https:// URL with a host, and https:// when Herald serves TLS itself.
func checkPublicURL(raw string, servesTLS bool) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url must be the absolute http:// or https:// URL people reach Herald at, such as https://herald.example.com; %q is not", raw)
	}
	if servesTLS && u.Scheme != "https" {
		return fmt.Errorf("--public-url %q is http://, but --tls-cert makes Herald serve HTTPS; write it with https://", raw)
	}
	return nil
}

// publicHTTPS reports whether people reach Herald over HTTPS: it serves
// TLS itself, or --public-url says a proxy in front does.
func (c serveConfig) publicHTTPS() bool {
	if c.TLSCert != "" {
		return true
	}
	u, err := url.Parse(c.PublicURL)
	return err == nil && u.Scheme == "https"
}
