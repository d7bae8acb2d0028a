package dispatch

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/netguard"
	"golang.org/x/net/idna"
)

// idleTimeout is how long an idle connection to a receiver is kept.
const idleTimeout = 90 * time.Second

// wireClient sends webhook requests over HTTP/1.1 connections it keeps
// itself (decision 0026). The goroutine that sends a request writes it
// and reads the answer on its connection, then puts the connection back:
// no goroutines per connection and no hand-offs between them, as
// net/http's Transport has, which cost Herald about as much CPU per
// delivery as its whole database write. Answers are parsed by
// net/http.ReadResponse, so chunked and close-delimited bodies, 1xx
// answers and malformed headers are read as net/http reads them.
//
// Every connection is dialed through the destination guard (netguard), so
// the address is judged when it is dialed; there is no proxy. A client
// presents at most one client certificate (nil: none); the sender keeps
// one client per certificate, so a connection authenticated as one
// webhook never carries another's requests.
//
// Ownership: idle holds the connections not in use, by destination, under
// mu; a connection taken from it belongs to the one request using it until
// that request puts it back or closes it.
type wireClient struct {
	dialer  *netguard.Dialer
	tls     *tls.Config
	maxIdle int // idle connections kept per destination

	mu     sync.Mutex
	idle   map[string][]*wireConn // by destination key (wireConn.key)
	closed bool
}

func newWireClient(policy netguard.Policy, rootCAs *x509.CertPool, maxIdlePerHost int, cert *tls.Certificate) *wireClient {
	d := netguard.NewDialer(policy)
	d.KeepAlive = 30 * time.Second
	// HTTP/1.1 only: a receiver offered h2 by ALPN would answer in a
	// protocol this client does not speak.
	cfg := &tls.Config{RootCAs: rootCAs, NextProtos: []string{"http/1.1"}}
	if cert != nil {
		// Always this certificate, even when the receiver's list of
		// acceptable CAs does not name its issuer: the receiver decides,
		// and its refusal says more than a handshake without one.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &wireClient{dialer: d, tls: cfg, maxIdle: max(maxIdlePerHost, 1), idle: map[string][]*wireConn{}}
}

// wireConn is one connection to a receiver.
type wireConn struct {
	net.Conn
	key    string
	budget *budgetReader // under br: limits how much of an answer's head is read
	br     *bufio.Reader
	used   time.Time
}

// budgetReader reads from r until n bytes have been read, then fails with
// errHeadTooLong.
type budgetReader struct {
	r io.Reader
	n int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errHeadTooLong
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}

// errHeadTooLong is an answer whose status line and headers are longer
// than maxResponseHeader; describe knows its words.
var errHeadTooLong = fmt.Errorf("server response headers exceeded %d bytes", maxResponseHeader)

// answer is what a receiver answered: its status and headers, the first
// herald.MaxResponseBody bytes of its body, and why the rest of the body
// could not be read (nil when it was, to its end).
type answer struct {
	status  int
	header  http.Header
	body    []byte
	bodyErr error
}

// post sends body to target with header h, within ctx (whose deadline is
// the webhook's timeout), noting in p how far it got. Its error is the
// dial's, the handshake's, or the request's; ctx's own error when ctx ended
// first (context.DeadlineExceeded for the timeout).
func (c *wireClient) post(ctx context.Context, target *url.URL, h http.Header, body []byte, p *reqProgress) (*answer, error) {
	target, err := asciiHost(target)
	if err != nil {
		return nil, err
	}
	bp := requestBuffers.Get().(*[]byte)
	defer requestBuffers.Put(bp)
	req, err := appendRequest((*bp)[:0], target, h, body)
	if err != nil {
		return nil, err
	}
	*bp = req
	key := target.Scheme + "://" + canonicalAddr(target)
	for try := 0; ; try++ {
		conn, reused, err := c.conn(ctx, key, target, p, try > 0)
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		a, retry, err := c.exchange(ctx, conn, req, p)
		if err != nil {
			conn.Close()
			// A connection that sat idle may have been closed by the
			// receiver just as it was taken: the request never reached it.
			// It is sent once more, on a connection dialed for it (as
			// net/http does): the other idle ones may be as stale.
			if reused && retry && try == 0 && ctx.Err() == nil {
				continue
			}
			return nil, ctxErr(ctx, err)
		}
		return a, nil
	}
}

// requestBuffers hold requests as they are written, for reuse.
var requestBuffers = sync.Pool{New: func() any { return new([]byte) }}

// exchange writes req on conn and reads the answer. retry says
// whether an error came before any byte of an answer on a connection that
// may have been closed while idle. conn goes back to the idle pool only
// when the answer was read whole and the receiver keeps the connection.
func (c *wireClient) exchange(ctx context.Context, conn *wireConn, req []byte, p *reqProgress) (a *answer, retry bool, err error) {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	} else {
		conn.SetDeadline(time.Time{})
	}
	// Shutdown (ctx cancelled) interrupts a read or write in progress.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := conn.Write(req); err != nil {
		return nil, isClosedConn(err), err
	}
	p.wrote.Store(true)

	conn.budget.n = maxResponseHeader
	if _, err := conn.br.Peek(1); err != nil {
		return nil, isClosedConn(err), err
	}
	p.firstByte.Store(true)
	var resp *http.Response
	for {
		if resp, err = http.ReadResponse(conn.br, nil); err != nil {
			// A line cut short by the head's budget or by the deadline
			// reads as a malformed one; say what cut it.
			if conn.budget.n <= 0 {
				err = errHeadTooLong
			}
			return nil, false, ctxErr(ctx, err)
		}
		// An informational answer (100 Continue, 103 Early Hints) comes
		// before the real one.
		if resp.StatusCode >= 200 || resp.StatusCode < 100 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	conn.budget.n = math.MaxInt64
	a = &answer{status: resp.StatusCode, header: resp.Header}
	a.body, a.bodyErr = io.ReadAll(io.LimitReader(resp.Body, herald.MaxResponseBody))
	if a.bodyErr == nil {
		// Read on to the end, within maxDiscard, so the connection can be
		// reused and an answer cut short is told from a whole one.
		var n int64
		n, a.bodyErr = io.CopyN(io.Discard, resp.Body, maxDiscard+1)
		if errors.Is(a.bodyErr, io.EOF) {
			a.bodyErr = nil
		} else if a.bodyErr == nil && n > maxDiscard {
			a.bodyErr = errAnswerTooLong
		}
	}
	if a.bodyErr != nil {
		a.bodyErr = ctxErr(ctx, a.bodyErr)
	}
	// A connection goes back only once ctx can no longer cut it short:
	// stop is false when ctx ended and its deadline may still be set on
	// the connection, under a request that took it from the pool.
	if !stop() || a.bodyErr != nil || resp.Close || resp.StatusCode == http.StatusSwitchingProtocols || conn.br.Buffered() > 0 {
		conn.Close()
	} else {
		c.put(conn)
	}
	return a, false, nil
}

// conn returns an idle connection to key's destination, or dials one (a
// fresh one always when fresh is set). reused says which.
func (c *wireClient) conn(ctx context.Context, key string, target *url.URL, p *reqProgress, fresh bool) (conn *wireConn, reused bool, err error) {
	if !fresh {
		if idle := c.take(key); idle != nil {
			p.connected.Store(true)
			return idle, true, nil
		}
	}
	raw, err := c.dialer.DialContext(ctx, "tcp", dialAddr(target))
	if err != nil {
		return nil, false, err
	}
	if target.Scheme == "https" {
		cfg := c.tls.Clone()
		cfg.ServerName = target.Hostname()
		p.tlsStarted.Store(true)
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, false, err
		}
		raw = tc
	}
	p.connected.Store(true)
	conn = &wireConn{Conn: raw, key: key}
	conn.budget = &budgetReader{r: raw}
	conn.br = bufio.NewReaderSize(conn.budget, 4<<10)
	return conn, false, nil
}

// take returns the idle connection to key used last, closing those idle
// longer than idleTimeout, or nil.
func (c *wireClient) take(key string) *wireConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	conns := c.idle[key]
	for len(conns) > 0 {
		conn := conns[len(conns)-1]
		conns[len(conns)-1] = nil
		conns = conns[:len(conns)-1]
		if time.Since(conn.used) < idleTimeout {
			c.idle[key] = conns
			return conn
		}
		conn.Close()
	}
	delete(c.idle, key)
	return nil
}

// put keeps conn for the next request to its destination, or closes it
// when maxIdle are kept already or the client was closed.
func (c *wireClient) put(conn *wireConn) {
	conn.SetDeadline(time.Time{})
	conn.used = time.Now()
	c.mu.Lock()
	conns := c.idle[conn.key]
	if c.closed || len(conns) >= c.maxIdle {
		c.mu.Unlock()
		conn.Close()
		return
	}
	c.idle[conn.key] = append(conns, conn)
	c.mu.Unlock()
}

// CloseIdleConnections closes the connections not in use; requests in
// flight finish and close theirs.
func (c *wireClient) CloseIdleConnections() {
	c.mu.Lock()
	idle := c.idle
	c.idle = map[string][]*wireConn{}
	c.mu.Unlock()
	for _, conns := range idle {
		for _, conn := range conns {
			conn.Close()
		}
	}
}

// close closes the idle connections and keeps none from now on: for a
// client dropped for good.
func (c *wireClient) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.CloseIdleConnections()
}

// appendRequest appends the HTTP/1.1 POST of body to target, with header
// h, to buf. A header name or value that could not be sent as it is
// (a line break, a control character) is an error, as net/http makes it.
func appendRequest(buf []byte, target *url.URL, h http.Header, body []byte) ([]byte, error) {
	buf = append(buf, "POST "...)
	buf = append(buf, target.RequestURI()...)
	buf = append(buf, " HTTP/1.1\r\nHost: "...)
	buf = append(buf, hostHeader(target)...)
	buf = append(buf, "\r\n"...)
	for name, values := range h {
		if !validHeaderName(name) {
			return nil, &buildError{fmt.Sprintf("the header name %q cannot be sent", name)}
		}
		for _, v := range values {
			if !validHeaderValue(v) {
				return nil, &buildError{fmt.Sprintf("the value of header %q has a control character and cannot be sent", name)}
			}
			buf = append(buf, name...)
			buf = append(buf, ": "...)
			buf = append(buf, v...)
			buf = append(buf, "\r\n"...)
		}
	}
	buf = append(buf, "Content-Length: "...)
	buf = strconv.AppendInt(buf, int64(len(body)), 10)
	buf = append(buf, "\r\n\r\n"...)
	return append(buf, body...), nil
}

// buildError is a request that could not be put on the wire as it is.
type buildError struct{ why string }

func (e *buildError) Error() string { return "could not build the request: " + e.why }

// validHeaderName reports whether name is an HTTP token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v has no control character but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// asciiHost returns target with an internationalised host name written in
// ASCII (IDNA, "bücher.example" as "xn--bcher-kva.example"), as net/http
// writes it: for the dial, the Host header and TLS's server name alike.
func asciiHost(target *url.URL) (*url.URL, error) {
	host := target.Hostname()
	if isASCII(host) {
		return target, nil
	}
	a, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return nil, &buildError{fmt.Sprintf("the host name %q cannot be written in ASCII (IDNA: %v)", host, err)}
	}
	u := *target
	u.Host = a
	if port := target.Port(); port != "" {
		u.Host = net.JoinHostPort(a, port)
	}
	return &u, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// hostHeader is target's Host header: its host and port as written,
// without an IPv6 zone, which is local to this machine.
func hostHeader(target *url.URL) string {
	host := target.Host
	if i := strings.IndexByte(host, '%'); i >= 0 {
		if j := strings.IndexByte(host[i:], ']'); j >= 0 {
			host = host[:i] + host[i+j:]
		}
	}
	return host
}

// dialAddr is the address to dial for target: its host and its port, or
// the scheme's.
func dialAddr(target *url.URL) string {
	port := target.Port()
	if port == "" {
		port = "80"
		if target.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(target.Hostname(), port)
}

// canonicalAddr is dialAddr, lower-cased: one key for one destination.
func canonicalAddr(target *url.URL) string { return strings.ToLower(dialAddr(target)) }

// isClosedConn reports whether err is what a connection closed by the
// receiver gives before any answer: EOF, a reset or a broken pipe.
func isClosedConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// ctxErr returns ctx's error when ctx ended (shutdown) or its deadline
// (the webhook's timeout) has passed, whatever err says, for a request
// cut off by the deadline set on its connection may fail in any way (a
// line cut short reads as a malformed one); else err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return err
}
