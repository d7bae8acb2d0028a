package dispatch

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/signature"
	"go.opentelemetry.io/otel/propagation"
)

// maxDiscard is how much of an answer beyond MaxResponseBody is read and
// thrown away so the connection can be reused; a longer answer costs the
// connection instead of our bandwidth.
const maxDiscard = 64 << 10

// maxResponseHeader is the most of an answer's headers Herald reads.
const maxResponseHeader = 64 << 10

// maxCertClients bounds the clients kept for webhooks with a client
// certificate; past it, the one used longest ago is dropped (and made
// again when its webhook sends next).
const maxCertClients = 256

// sender makes webhook requests and turns what happens into an Attempt.
// Any number of goroutines use it at once.
type sender struct {
	// client sends for webhooks without a client certificate; they share
	// its connections.
	client *wireClient
	// newCertClient makes the client of a webhook with a client
	// certificate.
	newCertClient func(*tls.Certificate) *wireClient
	// requireHTTPS refuses to send to a URL that is not https://.
	requireHTTPS bool
	now          func() time.Time
	// listen takes the requests of `listen:` webhooks (listen.go).
	listen *listenHub

	mu sync.Mutex
	// certClients holds, by webhook ID, the client presenting that
	// webhook's certificate. A client (and its connections) is never
	// shared between webhooks or certificates: a connection opened with
	// one webhook's certificate is authenticated as that webhook.
	certClients map[string]*certClient
	uses        uint64 // a clock for least recently used, under mu
}

// certClient is the client for one webhook's certificate and key.
type certClient struct {
	sum    [sha256.Size]byte // of the certificate and key it was made for
	client *wireClient       // nil when the pair did not load
	err    error             // why the pair did not load
	used   uint64
}

func newSender(policy netguard.Policy, rootCAs *x509.CertPool, requireHTTPS bool, maxIdlePerHost, maxIdlePerWebhook int, now func() time.Time) *sender {
	return &sender{
		client: newWireClient(policy, rootCAs, maxIdlePerHost, nil),
		newCertClient: func(cert *tls.Certificate) *wireClient {
			return newWireClient(policy, rootCAs, maxIdlePerWebhook, cert)
		},
		requireHTTPS: requireHTTPS,
		now:          now,
		listen:       newListenHub(),
		certClients:  map[string]*certClient{},
	}
}

// clientFor returns the client to send w's requests with: the shared one,
// or one that presents w's client certificate. Its error says, in words
// for the admin, why w's certificate and key could not be used.
func (s *sender) clientFor(w *herald.Webhook) (*wireClient, error) {
	if w.ClientCertificate == "" && w.ClientKey == "" {
		return s.client, nil
	}
	h := sha256.New()
	h.Write([]byte(w.ClientCertificate))
	h.Write([]byte{0})
	h.Write([]byte(w.ClientKey)) // a credential: only hashed here, to tell pairs apart
	var sum [sha256.Size]byte
	h.Sum(sum[:0])

	s.mu.Lock()
	defer s.mu.Unlock()
	s.uses++
	c := s.certClients[w.ID]
	if c != nil && c.sum == sum {
		c.used = s.uses
		return c.client, c.err
	}
	if c != nil && c.client != nil { // the webhook's pair changed
		c.client.close()
	}
	if c == nil && len(s.certClients) >= maxCertClients {
		s.evictLocked()
	}
	c = &certClient{sum: sum, used: s.uses}
	pair, err := tls.X509KeyPair([]byte(w.ClientCertificate), []byte(w.ClientKey))
	if err != nil {
		c.err = fmt.Errorf("the webhook's client certificate and key could not be loaded (%v); set them again", err)
	} else {
		c.client = s.newCertClient(&pair)
	}
	s.certClients[w.ID] = c
	return c.client, c.err
}

// evictLocked drops the client used longest ago. Requests in flight on
// it finish; its idle connections are closed.
func (s *sender) evictLocked() {
	var oldest string
	for id, c := range s.certClients {
		if oldest == "" || c.used < s.certClients[oldest].used {
			oldest = id
		}
	}
	if c := s.certClients[oldest]; c != nil && c.client != nil {
		c.client.close()
	}
	delete(s.certClients, oldest)
}

// send POSTs ev to w, signed by signer (the webhook's keys), as attempt n. It returns the
// attempt, the answer's Retry-After header, and whether the webhook's
// timeout ran out before the whole answer came. Every failure, including a
// refused destination, is in the attempt's Error, in words for the
// receiver's developer. When ctx ends before the receiver answers, Error
// says "timed out" only if the webhook's own timeout ran out; the caller
// tells the difference from shutdown by looking at its ctx.
func (s *sender) send(ctx context.Context, w *herald.Webhook, ev *herald.Event, signer queue.Signer, n int) (a herald.Attempt, retryAfter string, timedOut bool) {
	start := s.now()
	clock := time.Now() // durations on the real clock, also when s.now is injected
	a = herald.Attempt{N: n, StartedAt: start}
	retryAfter, timedOut = s.do(ctx, &a, w, ev, signer)
	a.DurationMs = time.Since(clock).Milliseconds()
	return a, retryAfter, timedOut
}

func (s *sender) do(ctx context.Context, a *herald.Attempt, w *herald.Webhook, ev *herald.Event, signer queue.Signer) (retryAfter string, timedOut bool) {
	body, err := w.Payload.Render(ev)
	if err != nil {
		a.Error = fmt.Sprintf("could not render the payload: %v", err)
		return "", false
	}
	if w.URL == herald.ListenURL {
		return s.viaListener(ctx, a, w, ev, signer, body)
	}
	u, err := requestURL(w.URL, w.QueryParameters)
	if err != nil {
		a.Error = err.Error()
		return "", false
	}
	if s.requireHTTPS && u.Scheme != "https" {
		a.Error = fmt.Sprintf("the webhook URL is %s://, and this Herald sends only to https:// URLs (--require-https-destinations); nothing was sent: change the URL to https://", u.Scheme)
		return "", false
	}
	client, err := s.clientFor(w)
	if err != nil {
		a.Error = err.Error()
		return "", false
	}
	timeout := time.Duration(cmp.Or(w.TimeoutSeconds, herald.DefaultTimeoutSeconds)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	header := make(http.Header, len(w.Headers)+6)
	if err := signRequest(header, w, ev, signer, a.StartedAt, body); err != nil {
		a.Error = err.Error()
		return "", false
	}
	// The attempt's span (or, for a test request, the API request's), when
	// the node traces: the receiver's own spans join the trace. Without a
	// span in ctx this sets nothing.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(header))

	var progress reqProgress
	resp, err := client.post(ctx, u, header, body, &progress)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			a.Error = progress.timeoutText(timeout)
			return "", true
		}
		if be := (*buildError)(nil); errors.As(err, &be) {
			a.Error = be.Error()
			return "", false
		}
		a.Error = describe(err, timeout, client != s.client)
		return "", false
	}
	a.StatusCode = resp.status
	a.ResponseBody = responseText(resp.body)
	bodyErr := resp.bodyErr

	switch code := resp.status; {
	case code >= 200 && code < 300:
		// A 2xx counts only once the whole answer has come: one cut short
		// or never ending may come from a receiver that fell over while
		// it answered, and an answer that never ends holds a sender.
		if bodyErr != nil {
			a.Error = describeBody(bodyErr, statusText(code), timeout)
			timedOut = errors.Is(bodyErr, context.DeadlineExceeded) || isTimeout(bodyErr)
		}
	case code >= 300 && code < 400:
		if loc, err := u.Parse(resp.header.Get("Location")); err == nil && resp.header.Get("Location") != "" {
			a.Error = fmt.Sprintf("redirect to %s not followed", loc)
		} else {
			a.Error = fmt.Sprintf("receiver answered %s (a redirect without a usable Location); redirects are not followed", statusText(code))
		}
	default:
		a.Error = "receiver answered " + statusText(code)
	}
	return resp.header.Get("Retry-After"), timedOut
}

// signRequest sets the headers of a request of ev to w with body, made at
// at: the webhook's configured headers, then Herald's own and the
// signature. Its error says, in words for the admin, why it could not sign.
func signRequest(h http.Header, w *herald.Webhook, ev *herald.Event, signer queue.Signer, at time.Time, body []byte) error {
	for _, nv := range w.Headers {
		h.Add(nv.Name, nv.Value)
	}
	// Herald's own headers last, so no configured header can replace them
	// (validation forbids it too).
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Herald/"+herald.Version)
	sig, err := signer.Sign(ev.ID, at, body)
	if err != nil {
		return fmt.Errorf("could not sign the request: %v", err)
	}
	h.Set(signature.HeaderID, ev.ID)
	h.Set(signature.HeaderTimestamp, fmt.Sprint(at.Unix()))
	h.Set(signature.HeaderSignature, sig)
	return nil
}

// requestURL is the webhook's URL with its query parameters appended,
// keeping any query the URL already has exactly as written. Its errors do
// not quote the URL: its query may carry a credential.
func requestURL(raw string, params []herald.NameValue) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("the webhook has no URL")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("could not build the request: the webhook URL is not an http:// or https:// URL with a host")
	}
	if len(params) == 0 {
		return u, nil
	}
	var q strings.Builder
	q.WriteString(u.RawQuery)
	for _, p := range params {
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(url.QueryEscape(p.Name))
		q.WriteByte('=')
		q.WriteString(url.QueryEscape(p.Value))
	}
	u.RawQuery = q.String()
	return u, nil
}

// overloaded reports whether an attempt says its receiver is overloaded:
// it answered 429 Too Many Requests or 503 Service Unavailable, or the
// webhook's timeout ran out (timedOut, as send returns it). The scheduler
// paces such a webhook (pace.go).
func overloaded(a *herald.Attempt, timedOut bool) bool {
	return timedOut || a.StatusCode == http.StatusTooManyRequests || a.StatusCode == http.StatusServiceUnavailable
}

// errAnswerTooLong is an answer longer than MaxResponseBody + maxDiscard.
var errAnswerTooLong = errors.New("answer too long")

// describeBody says why the body of an answer with status code (as
// statusText writes it) could not be read whole.
func describeBody(err error, status string, timeout time.Duration) string {
	switch {
	case errors.Is(err, errAnswerTooLong):
		return fmt.Sprintf("the receiver answered %s with a body over %d KiB, and Herald reads no more than that: answer with a short body (Herald keeps the first %d KiB)",
			status, (herald.MaxResponseBody+maxDiscard)>>10, herald.MaxResponseBody>>10)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Sprintf("the receiver sent the body of its %s answer too slowly: not complete within %s", status, formatDuration(timeout))
	}
	return fmt.Sprintf("the receiver answered %s and then closed the connection in the middle of its answer (%s)", status, describe(err, timeout, false))
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// reqProgress is how far a request got, written by the wire client as it
// goes and read once the request has ended, to say where a timeout
// struck.
type reqProgress struct {
	tlsStarted, connected, wrote, firstByte atomic.Bool
}

// timeoutText says where the request was when its timeout struck.
func (p *reqProgress) timeoutText(timeout time.Duration) string {
	within := formatDuration(timeout)
	switch {
	case p.firstByte.Load():
		return "the receiver sent its answer's headers too slowly: not complete within " + within
	case p.wrote.Load():
		return "no answer within " + within
	case p.connected.Load():
		return "the request could not be sent within " + within + ": the receiver does not read it"
	case p.tlsStarted.Load():
		return "the TLS handshake did not finish within " + within
	}
	return "could not connect within " + within
}

// describe turns a failed request into what a receiver's developer needs to
// read: "connection refused", not "Post \"http://...\": dial tcp ...".
// hasCert says whether the request offered a client certificate.
func describe(err error, timeout time.Duration, hasCert bool) string {
	var (
		blocked *netguard.BlockedError
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		netErr  net.Error
		opErr   *net.OpError
		urlErr  *url.Error
	)
	switch {
	case errors.As(err, &blocked):
		return blocked.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out after " + formatDuration(timeout)
	case errors.Is(err, context.Canceled):
		return "cancelled before the receiver answered"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the receiver"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("host name %s not found (DNS)", dnsErr.Name)
		}
		return fmt.Sprintf("could not resolve host name %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &certErr):
		return describeCert(certErr)
	case errors.As(err, &opErr) && opErr.Op == "remote error" && strings.Contains(opErr.Err.Error(), "certificate"):
		// A TLS alert from the receiver about a certificate is about ours:
		// it checks the client's, never its own.
		if !hasCert {
			return fmt.Sprintf("the receiver asks for a TLS client certificate and this webhook has none (%s); set clientCertificate and clientKey on the webhook", opErr.Err)
		}
		return fmt.Sprintf("the receiver refused this webhook's TLS client certificate (%s)", opErr.Err)
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &recErr):
		// An HTTP server answering a TLS hello is ErrSchemeMismatch (the
		// client recognises "HTTP/"); any other non-TLS answer is a
		// RecordHeaderError.
		return "the receiver did not answer with TLS (an https:// URL pointing at a plain-HTTP server?)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the receiver closed the connection without answering"
	case strings.Contains(err.Error(), "server response headers exceeded"):
		return fmt.Sprintf("the receiver's answer headers are over %d KiB, more than Herald reads", maxResponseHeader>>10)
	case errors.As(err, &urlErr):
		return urlErr.Err.Error()
	}
	return err.Error()
}

// describeCert says why the receiver's certificate was refused, and what
// to do about it.
func describeCert(e *tls.CertificateVerificationError) string {
	var (
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		unknown  x509.UnknownAuthorityError
	)
	switch {
	case errors.As(e.Err, &invalid) && invalid.Reason == x509.Expired && invalid.Cert != nil:
		if time.Now().Before(invalid.Cert.NotBefore) {
			return fmt.Sprintf("the receiver's TLS certificate is not valid before %s (check the receiver's certificate, or the clocks)", herald.FormatTime(invalid.Cert.NotBefore))
		}
		return fmt.Sprintf("the receiver's TLS certificate expired at %s: the receiver must renew it", herald.FormatTime(invalid.Cert.NotAfter))
	case errors.As(e.Err, &hostname) && hostname.Certificate != nil:
		names := append(append([]string{}, hostname.Certificate.DNSNames...), ipStrings(hostname.Certificate.IPAddresses)...)
		return fmt.Sprintf("the receiver's TLS certificate is for %s, not for %s: fix the webhook's URL or the receiver's certificate", strings.Join(names, ", "), hostname.Host)
	case errors.As(e.Err, &unknown):
		return "the receiver's TLS certificate is not signed by an authority Herald trusts (self-signed?): use a certificate from a public CA, or give Herald its CA with --destination-ca-file"
	}
	return "the receiver's TLS certificate was not accepted: " + e.Err.Error()
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// responseText makes the kept part of an answer storable text: a character
// split by the cut is dropped, so the text stays within MaxResponseBody,
// and bytes that are not UTF-8 (a binary answer) become U+FFFD.
func responseText(b []byte) string {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				b = b[:len(b)-i]
			}
			break
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
