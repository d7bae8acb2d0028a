package heraldtest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/heraldhooks/herald/signature"
)

// ReceiverConfig says where a Receiver listens, how it verifies and what
// it keeps. The zero value is a plain HTTP receiver on 127.0.0.1 that
// verifies nothing until it is given a secret, keeps every request and
// answers 200.
type ReceiverConfig struct {
	// Host is the loopback address to listen on: 127.0.0.1 when empty,
	// another address of 127.0.0.0/8, or ::1. Any other address is refused:
	// a test receiver never listens beyond the machine.
	Host string
	// TLS, when set, makes the receiver serve HTTPS with it; its
	// ClientAuth decides whether clients must present a certificate
	// (mutual TLS). CA.ServerTLS makes one.
	TLS *tls.Config
	// Secrets are the webhook's signing secrets (whsec_...), for every path
	// (see Receiver.SetSecrets).
	Secrets []string
	// Strict refuses a request for which the receiver has no secret (none
	// for its path, none for every path), as a real receiver must: 401, a
	// signature failure with ErrNoSecret. Without Strict such a request is
	// answered unverified, for tests that do not look at signatures.
	Strict bool
	// Verify checks one request against one secret. When nil, the receiver
	// uses signature.Verify with its default tolerance around Now.
	Verify func(secret string, header http.Header, body []byte) error
	// Now is the time the default Verify checks timestamps against:
	// time.Now when nil. Give it the clock Herald signs with when that is
	// not real time.
	Now func() time.Time
	// Respond answers the requests that are not refused for their
	// signature (see Receiver.SetRespond); nil answers 200.
	Respond RespondFunc
	// Other serves these paths with their own handlers, without
	// verifying, counting or keeping anything: a health check, or a bare
	// path that measures HTTP alone.
	Other map[string]http.Handler
	// Forget keeps no request, only the counts (requests, duplicates,
	// signature failures, in flight), for load where keeping every request
	// would cost memory and time: Requests and Delivered stay empty and a
	// Request's Header is the live request's, valid only while Respond
	// runs. Respond still sees every request.
	Forget bool
	// MaxBody is the most of a body the receiver reads: 1 MiB when 0.
	// A longer body is answered 413, neither verified nor recorded.
	MaxBody int64
}

// RespondFunc answers one request: w and r are the live request's (r's
// body has been read already, req.Body holds it), req is what the
// receiver recorded of it. Whatever status it writes is recorded; writing
// nothing answers 200, unless the client went away meanwhile.
type RespondFunc func(w http.ResponseWriter, r *http.Request, req *Request)

// Request is one request a Receiver took.
type Request struct {
	// N numbers the requests the receiver took, from 1.
	N int
	// Path and Query are the request's URL path and raw query.
	Path, Query string
	// Header and Body are what arrived (Header is a copy, except with
	// ReceiverConfig.Forget).
	Header http.Header
	Body   []byte
	// At is when the receiver had read the body.
	At time.Time
	// ID is the webhook-id header: the event's id, the same on every retry
	// and resend.
	ID string
	// Seen counts the requests with this ID at this Path that the receiver
	// took so far, this one included and those refused for their signature
	// excluded: 1 for the first, more for a duplicate (a retry after a
	// failed answer, or a redelivery, as delivery is at least once). 0 for
	// a request refused for its signature.
	Seen int
	// Verified says the signature was checked and holds under one of the
	// secrets. A request is not verified when the receiver had no secret
	// for its path; unless the receiver is Strict, it is then answered
	// like a verified one.
	Verified bool
	// SignatureErr says why verification failed (a wrong signature, a
	// missing header, a timestamp out of tolerance). Such a request is
	// answered 401 and counted in SignatureFailures.
	SignatureErr error
	// ClientCert is the common name of the certificate the client
	// presented over mutual TLS, or "".
	ClientCert string
	// Status is what the receiver answered: 0 while it is answering, or
	// when the client went away before an answer (and always with
	// ReceiverConfig.Forget).
	Status int
}

// Answer is a fixed way to answer, for SetAnswer or as a RespondFunc
// (Answer{...}.Respond).
type Answer struct {
	// Status is the status code: 200 when 0.
	Status int
	// RetryAfter, when positive, is sent as Retry-After in whole seconds.
	RetryAfter time.Duration
	// Delay holds the answer this long, or until the client gives up; a
	// negative Delay holds it until the client gives up (a receiver that
	// hangs).
	Delay time.Duration
	// Body is the answer's body.
	Body string
}

// Respond answers as a says.
func (a Answer) Respond(w http.ResponseWriter, r *http.Request, _ *Request) {
	switch {
	case a.Delay < 0:
		<-r.Context().Done()
		return
	case a.Delay > 0:
		t := time.NewTimer(a.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	if a.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((a.RetryAfter+time.Second-1)/time.Second)))
	}
	if a.Status != 0 {
		w.WriteHeader(a.Status)
	}
	io.WriteString(w, a.Body)
}

// ErrNoSecret is the SignatureErr of a request a strict receiver refused
// for want of a secret to check it with.
var ErrNoSecret = errors.New("heraldtest: the receiver has no secret for this path")

// Hang holds the request until the client gives up (its timeout, or the
// receiver closing), and answers nothing.
func Hang(_ http.ResponseWriter, r *http.Request, _ *Request) { <-r.Context().Done() }

// Receiver is a webhook receiver on loopback, as a test wants one. It
// takes requests at any path, verifies each one's Standard Webhooks
// signature against the secrets it was given for that path, records it
// (Requests), counts duplicates (the same webhook-id again at the same
// path) and signature failures, answers a failed signature 401 and any
// other request as told (SetRespond, SetAnswer), and can be waited on
// (WaitFor, WaitCount, WaitDelivered). It is safe for concurrent use.
//
// Tests make one with NewReceiver, which closes it when the test ends;
// programs with StartReceiver and Close.
type Receiver struct {
	// URL is the receiver's root, such as http://127.0.0.1:41234 (https
	// with TLS); give Herald URL plus any path.
	URL string

	srv     *http.Server
	verify  func(secret string, header http.Header, body []byte) error
	other   map[string]http.Handler
	forget  bool
	strict  bool
	maxBody int64

	mu          sync.Mutex
	idle        *sync.Cond // signalled when inFlight drops to 0
	closed      bool
	secrets     map[string][]string // by path; "" for every path without its own
	respond     RespondFunc
	requests    []*Request
	seen        map[pathID]int
	delivered   map[string]*Request // webhook-id: the first request answered 2xx
	n           int
	duplicates  int
	sigFailures int
	inFlight    int
	maxInFlight int
	changed     chan struct{} // made by a waiter, closed at the next change
}

type pathID struct{ path, id string }

// StartReceiver starts a receiver as cfg says. Close stops it.
func StartReceiver(cfg ReceiverConfig) (*Receiver, error) {
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("heraldtest: receiver host %q is not a loopback address", host)
	}
	rc := &Receiver{
		verify: cfg.Verify, other: cfg.Other, forget: cfg.Forget, strict: cfg.Strict, maxBody: cfg.MaxBody,
		secrets: map[string][]string{}, respond: cfg.Respond,
		seen: map[pathID]int{}, delivered: map[string]*Request{},
	}
	rc.idle = sync.NewCond(&rc.mu)
	if rc.maxBody <= 0 {
		rc.maxBody = 1 << 20
	}
	if rc.verify == nil {
		now := cfg.Now
		if now == nil {
			now = time.Now
		}
		rc.verify = func(secret string, h http.Header, body []byte) error {
			return signature.Verify(secret, h, body, now(), 0)
		}
	}
	if len(cfg.Secrets) > 0 {
		rc.secrets[""] = append([]string(nil), cfg.Secrets...)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("heraldtest: start a receiver: %w", err)
	}
	scheme := "http"
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
		scheme = "https"
	}
	rc.URL = scheme + "://" + ln.Addr().String()
	rc.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)} // refused handshakes and cut connections are often the point
	go rc.srv.Serve(ln)
	return rc, nil
}

// NewReceiver starts a receiver as cfg says and closes it when the test
// ends. It fails the test if the receiver cannot start.
func NewReceiver(tb TB, cfg ReceiverConfig) *Receiver {
	tb.Helper()
	rc, err := StartReceiver(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(rc.Close)
	return rc
}

// Close stops the receiver: it closes every connection, which ends the
// requests being held, and waits (up to 10 s) for their answers to
// return.
func (rc *Receiver) Close() {
	rc.srv.Close()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.closed = true
	deadline := time.AfterFunc(10*time.Second, func() {
		rc.mu.Lock()
		rc.idle.Broadcast()
		rc.mu.Unlock()
	})
	defer deadline.Stop()
	start := time.Now()
	for rc.inFlight > 0 && time.Since(start) < 10*time.Second {
		rc.idle.Wait()
	}
}

// SetSecrets sets the secrets that requests to every path without secrets
// of its own are verified against; during a rotation give both. With none,
// such requests are not verified (and not refused).
func (rc *Receiver) SetSecrets(secrets ...string) { rc.SetPathSecrets("", secrets...) }

// SetPathSecrets sets the secrets of the webhook at path (such as
// "/hooks/a"), for a receiver that serves several webhooks; "" sets those
// of every other path.
func (rc *Receiver) SetPathSecrets(path string, secrets ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(secrets) == 0 {
		delete(rc.secrets, path)
		return
	}
	rc.secrets[path] = append([]string(nil), secrets...)
}

// SetRespond sets how requests are answered from now on (nil: 200). A
// request refused for its signature is answered 401 without it.
func (rc *Receiver) SetRespond(f RespondFunc) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

// SetAnswer answers every request from now on as a says.
func (rc *Receiver) SetAnswer(a Answer) { rc.SetRespond(a.Respond) }

// ServeHTTP takes one request; a Receiver is an http.Handler, which a test
// may mount in a server of its own.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := rc.other[r.URL.Path]; h != nil {
		h.ServeHTTP(w, r)
		return
	}
	body, err := readBody(r, rc.maxBody)
	if err != nil {
		return // the client went away while sending
	}
	if int64(len(body)) > rc.maxBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	req := &Request{Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header, Body: body,
		At: time.Now(), ID: r.Header.Get(signature.HeaderID)}
	if !rc.forget {
		req.Header = r.Header.Clone()
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		req.ClientCert = r.TLS.PeerCertificates[0].Subject.CommonName
	}

	rc.mu.Lock()
	if rc.closed {
		rc.mu.Unlock()
		http.Error(w, "receiver closed", http.StatusServiceUnavailable)
		return
	}
	secrets, ok := rc.secrets[req.Path]
	if !ok {
		secrets = rc.secrets[""]
	}
	respond := rc.respond
	rc.mu.Unlock()

	// Verifying runs unlocked: it is the costly part.
	if len(secrets) == 0 && rc.strict {
		req.SignatureErr = ErrNoSecret
	}
	for _, s := range secrets {
		if req.SignatureErr = rc.verify(s, r.Header, body); req.SignatureErr == nil {
			req.Verified = true
			break
		}
	}

	rc.mu.Lock()
	rc.n++
	req.N = rc.n
	if req.SignatureErr != nil {
		rc.sigFailures++
	} else {
		k := pathID{req.Path, req.ID}
		rc.seen[k]++
		req.Seen = rc.seen[k]
		if req.Seen > 1 {
			rc.duplicates++
		}
	}
	rc.inFlight++
	rc.maxInFlight = max(rc.maxInFlight, rc.inFlight)
	if !rc.forget {
		rc.requests = append(rc.requests, req)
	}
	rc.notifyLocked()
	rc.mu.Unlock()

	// The answer's status is noted for what the receiver keeps; when it
	// keeps nothing, the wrapper is not worth its allocation.
	var sw *statusWriter
	if !rc.forget {
		sw = &statusWriter{ResponseWriter: w}
		w = sw
	}
	switch {
	case req.SignatureErr != nil:
		http.Error(w, "signature: "+req.SignatureErr.Error(), http.StatusUnauthorized)
	case respond != nil:
		respond(w, r, req)
	}
	status := 0
	if sw != nil {
		status = sw.status
		if status == 0 && r.Context().Err() == nil {
			status = http.StatusOK // net/http answers 200 for a handler that wrote nothing
		}
	}

	rc.mu.Lock()
	req.Status = status
	if status/100 == 2 && req.SignatureErr == nil && !rc.forget {
		if _, dup := rc.delivered[req.ID]; !dup {
			rc.delivered[req.ID] = req
		}
	}
	rc.inFlight--
	if rc.inFlight == 0 {
		rc.idle.Broadcast()
	}
	rc.notifyLocked()
	rc.mu.Unlock()
}

// readBody reads r's body, at most limit+1 bytes: in one allocation of
// the announced length when there is one (net/http holds the body to it),
// else as io.ReadAll does.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	n := r.ContentLength
	if n < 0 || n > limit {
		return io.ReadAll(io.LimitReader(r.Body, limit+1))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}

// notifyLocked wakes the waiters; rc.mu is held.
func (rc *Receiver) notifyLocked() {
	if rc.changed != nil {
		close(rc.changed)
		rc.changed = nil
	}
}

// statusWriter notes the status a RespondFunc answers.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush,
// hijack, deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Requests returns what the receiver recorded of the requests it took, in
// the order they arrived (refused ones included).
func (rc *Receiver) Requests() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]Request, len(rc.requests))
	for i, r := range rc.requests {
		out[i] = *r
	}
	return out
}

// Last returns the last request the receiver took, and false if there was
// none.
func (rc *Receiver) Last() (Request, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.requests) == 0 {
		return Request{}, false
	}
	return *rc.requests[len(rc.requests)-1], true
}

// Delivered returns, for each webhook-id answered 2xx (and not refused
// for its signature), the first such request: what a receiver that
// dedupes on webhook-id has processed.
func (rc *Receiver) Delivered() map[string]Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]Request, len(rc.delivered))
	for id, r := range rc.delivered {
		out[id] = *r
	}
	return out
}

// Count returns how many requests the receiver took (refused ones
// included, Other paths and bodies over MaxBody not).
func (rc *Receiver) Count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n
}

// Duplicates returns how many requests repeated a webhook-id already seen
// at their path.
func (rc *Receiver) Duplicates() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.duplicates
}

// SignatureFailures returns how many requests failed verification.
func (rc *Receiver) SignatureFailures() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.sigFailures
}

// MaxInFlight returns the most requests the receiver was answering at
// once (since ResetMaxInFlight, if called).
func (rc *Receiver) MaxInFlight() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.maxInFlight
}

// ResetMaxInFlight starts MaxInFlight afresh from the requests being
// answered now, for a test that measures a later phase alone.
func (rc *Receiver) ResetMaxInFlight() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.maxInFlight = rc.inFlight
}

// errTimeout is what Wait returns when time is up.
var errTimeout = errors.New("timed out")

// Wait waits until cond holds and returns nil, or returns an error when
// timeout passes first. It checks cond after each change (a request taken
// or answered) and at least every 100 ms, never holding the receiver's
// lock, so cond may call the receiver's methods.
func (rc *Receiver) Wait(timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		rc.mu.Lock()
		if rc.changed == nil {
			rc.changed = make(chan struct{})
		}
		changed := rc.changed
		rc.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline.C:
			if cond() {
				return nil
			}
			return errTimeout
		}
	}
}

// WaitFor waits until cond holds, as Wait does, and fails the test, naming
// what it waited for, when timeout passes first.
func (rc *Receiver) WaitFor(tb TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if rc.Wait(timeout, cond) != nil {
		tb.Fatalf("heraldtest: timed out after %s waiting for %s (%s)", timeout, what, rc.summary())
	}
}

// WaitCount waits until the receiver has taken at least n requests.
func (rc *Receiver) WaitCount(tb TB, n int, timeout time.Duration) {
	tb.Helper()
	rc.WaitFor(tb, timeout, fmt.Sprintf("%d requests", n), func() bool { return rc.Count() >= n })
}

// WaitDelivered waits until every one of ids (webhook-ids, that is event
// ids) has been answered 2xx, and fails the test naming how many never
// were.
func (rc *Receiver) WaitDelivered(tb TB, timeout time.Duration, ids ...string) {
	tb.Helper()
	missing := 0
	err := rc.Wait(timeout, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		missing = 0
		for _, id := range ids {
			if _, ok := rc.delivered[id]; !ok {
				missing++
			}
		}
		return missing == 0
	})
	if err != nil {
		tb.Fatalf("heraldtest: %d of %d events never arrived within %s (%s)", missing, len(ids), timeout, rc.summary())
	}
}

// summary says what the receiver saw, for failure messages.
func (rc *Receiver) summary() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return fmt.Sprintf("the receiver took %d requests: %d delivered, %d duplicates, %d signature failures, %d in flight",
		rc.n, len(rc.delivered), rc.duplicates, rc.sigFailures, rc.inFlight)
}
