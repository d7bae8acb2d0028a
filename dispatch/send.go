package dispatch

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/signature"
)

// maxDiscard is how much of an answer beyond MaxResponseBody is read and
// thrown away so the connection can be reused; a longer answer costs the
// connection instead of our bandwidth.
const maxDiscard = 64 << 10

// newClient returns the HTTP client every webhook request goes through.
func newClient(allowPrivate bool, maxConnsPerHost int) *http.Client {
	d := netguard.NewDialer(allowPrivate)
	d.KeepAlive = 30 * time.Second
	return &http.Client{
		Transport: &http.Transport{
			// Never a proxy, whatever HTTP_PROXY says: the proxy would dial
			// the receiver for us and the dial-time guard would judge only
			// the proxy's address.
			Proxy:                  nil,
			DialContext:            d.DialContext,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           4 * maxConnsPerHost,
			MaxIdleConnsPerHost:    maxConnsPerHost,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    10 * time.Second,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		// A redirect is a failure: following it would send signed health
		// data to a place the admin never configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sender makes webhook requests and turns what happens into an Attempt.
type sender struct {
	client *http.Client
	now    func() time.Time
}

// send POSTs ev to w, signed with secrets, as attempt n. It returns the
// attempt and the answer's Retry-After header. Every failure, including a
// refused destination, is in the attempt's Error, in words for the
// receiver's developer. When ctx ends before the receiver answers, Error
// says "timed out" only if the webhook's own timeout ran out; the caller
// tells the difference from shutdown by looking at its ctx.
func (s *sender) send(ctx context.Context, w *herald.Webhook, ev *herald.Event, secrets []string, n int) (herald.Attempt, string) {
	start := s.now()
	clock := time.Now() // durations on the real clock, also when s.now is injected
	a := herald.Attempt{N: n, StartedAt: start}
	retryAfter := s.do(ctx, &a, w, ev, secrets)
	a.DurationMs = time.Since(clock).Milliseconds()
	return a, retryAfter
}

func (s *sender) do(ctx context.Context, a *herald.Attempt, w *herald.Webhook, ev *herald.Event, secrets []string) string {
	body, err := w.Payload.Render(ev)
	if err != nil {
		a.Error = fmt.Sprintf("could not render the payload: %v", err)
		return ""
	}
	target, err := requestURL(w.URL, w.QueryParameters)
	if err != nil {
		a.Error = err.Error()
		return ""
	}
	timeout := time.Duration(cmp.Or(w.TimeoutSeconds, herald.DefaultTimeoutSeconds)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		a.Error = fmt.Sprintf("could not build the request: %v", err)
		return ""
	}
	h := req.Header
	for _, nv := range w.Headers {
		h.Add(nv.Name, nv.Value)
	}
	// Herald's own headers last, so no configured header can replace them
	// (validation forbids it too).
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Herald/"+herald.Version)
	sig, err := signature.SignAll(secrets, ev.ID, a.StartedAt, body)
	if err != nil {
		a.Error = fmt.Sprintf("could not sign the request: %v", err)
		return ""
	}
	h.Set(signature.HeaderID, ev.ID)
	h.Set(signature.HeaderTimestamp, fmt.Sprint(a.StartedAt.Unix()))
	h.Set(signature.HeaderSignature, sig)

	resp, err := s.client.Do(req)
	if err != nil {
		a.Error = describe(err, timeout)
		return ""
	}
	defer resp.Body.Close()
	a.StatusCode = resp.StatusCode
	kept, _ := io.ReadAll(io.LimitReader(resp.Body, herald.MaxResponseBody))
	a.ResponseBody = responseText(kept)
	_, _ = io.CopyN(io.Discard, resp.Body, maxDiscard)

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
	case code >= 300 && code < 400:
		if loc, err := resp.Location(); err == nil {
			a.Error = fmt.Sprintf("redirect to %s not followed", loc)
		} else {
			a.Error = fmt.Sprintf("receiver answered %s (a redirect without a usable Location); redirects are not followed", statusText(code))
		}
	default:
		a.Error = "receiver answered " + statusText(code)
	}
	return resp.Header.Get("Retry-After")
}

// requestURL appends the webhook's query parameters to its URL, keeping any
// query the URL already has exactly as written.
func requestURL(raw string, params []herald.NameValue) (string, error) {
	if raw == "" {
		return "", errors.New("the webhook has no URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("the webhook URL %q is not valid: %v", raw, err)
	}
	if len(params) == 0 {
		return raw, nil
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
	return u.String(), nil
}

// describe turns a failed request into what a receiver's developer needs to
// read: "connection refused", not "Post \"http://...\": dial tcp ...".
func describe(err error, timeout time.Duration) string {
	var (
		blocked *netguard.BlockedError
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		netErr  net.Error
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
		return "the receiver's TLS certificate was not accepted: " + certErr.Err.Error()
	case errors.As(err, &recErr):
		return "the receiver did not answer with TLS (an https:// URL pointing at a plain-HTTP server?)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the receiver closed the connection without answering"
	case errors.As(err, &urlErr):
		return urlErr.Err.Error()
	}
	return err.Error()
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
