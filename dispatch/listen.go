package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
	"go.opentelemetry.io/otel/propagation"
)

// listenHub hands the attempts of `listen:` webhooks to the listeners
// (`herald listen` over GET .../webhooks/{name}/listen) connected to this
// node, and their answers back to the senders waiting for them. It is the
// one place that knows which listeners exist; a sender asks it instead of
// dialing (send.go), and the API's stream and answer routes reach it
// through Engine.Listen and Engine.Answer. Nothing in it is stored: an
// attempt that finds no listener fails like a refused connection, and the
// delivery waits for its next retry in the database.
//
// Any goroutine may call its methods; mu guards its maps.
type listenHub struct {
	mu sync.Mutex
	// listeners holds each webhook's connected listeners by webhook ID, in
	// the order they connected; turn is where its round robin stands.
	listeners map[string][]*listener
	turn      map[string]int
	// waiting holds the attempts handed to a listener and not answered
	// yet, by ListenRequest.ID. The sender that made one removes it when it
	// stops waiting; Answer removes it when it passes the answer on.
	waiting map[string]*exchange
	// ended is set by end: no listener may connect any more.
	ended bool
}

// listener is one connected stream. Its requests channel is unbuffered: a
// request is either taken by the stream's handler or still with its
// sender, never lost in between.
type listener struct {
	webhookID string
	requests  chan *herald.ListenRequest
	gone      chan struct{} // closed when the stream ends
}

// exchange is one attempt waiting for its answer.
type exchange struct {
	webhookID string
	answer    chan herald.ListenAnswer // buffered: Answer never blocks
}

func newListenHub() *listenHub {
	return &listenHub{listeners: map[string][]*listener{}, turn: map[string]int{}, waiting: map[string]*exchange{}}
}

// listen connects a listener of webhookID; see herald.Listeners.
func (h *listenHub) listen(webhookID string) (<-chan *herald.ListenRequest, <-chan struct{}, func()) {
	l := &listener{webhookID: webhookID, requests: make(chan *herald.ListenRequest), gone: make(chan struct{})}
	h.mu.Lock()
	if h.ended {
		h.mu.Unlock()
		close(l.gone)
		return l.requests, l.gone, func() {}
	}
	h.listeners[webhookID] = append(h.listeners[webhookID], l)
	h.mu.Unlock()
	return l.requests, l.gone, func() { h.drop(l) }
}

// drop disconnects l, once.
func (h *listenHub) drop(l *listener) {
	webhookID := l.webhookID
	h.mu.Lock()
	list := h.listeners[webhookID]
	i := slices.Index(list, l)
	if i < 0 {
		h.mu.Unlock()
		return // dropped already
	}
	list = slices.Delete(slices.Clone(list), i, i+1)
	if len(list) == 0 {
		delete(h.listeners, webhookID)
		delete(h.turn, webhookID)
	} else {
		h.listeners[webhookID] = list
	}
	h.mu.Unlock()
	close(l.gone)
}

// end disconnects every listener and lets none connect again: the node is
// shutting down, and its streams must end for its HTTP server to stop.
func (h *listenHub) end() {
	h.mu.Lock()
	h.ended = true
	var all []*listener
	for _, list := range h.listeners {
		all = append(all, list...)
	}
	h.mu.Unlock()
	for _, l := range all {
		h.drop(l)
	}
}

// answer passes a listener's answer to the sender waiting for request id.
func (h *listenHub) answer(webhookID, id string, a herald.ListenAnswer) error {
	h.mu.Lock()
	x := h.waiting[id]
	if x != nil && x.webhookID == webhookID {
		delete(h.waiting, id)
	}
	h.mu.Unlock()
	if x == nil || x.webhookID != webhookID {
		return herald.Errorf(herald.ENOTFOUND, "No attempt %q of this webhook waits for an answer on this node: it was answered already, or Herald stopped waiting (the webhook's timeout ran out, or the stream that took it ended).", id)
	}
	x.answer <- a
	return nil
}

// errNoListener is the attempt's error when no listener is connected.
var errNoListener = errors.New("no herald listen is connected to this webhook (on this node); the delivery waits for its next retry")

// exchange hands req to one of webhookID's listeners, round robin, and
// returns its answer. It gives up when ctx ends (the webhook's timeout),
// with an error in words for the admin.
func (h *listenHub) exchange(ctx context.Context, webhookID string, req *herald.ListenRequest) (herald.ListenAnswer, error) {
	x := &exchange{webhookID: webhookID, answer: make(chan herald.ListenAnswer, 1)}
	h.mu.Lock()
	list := h.listeners[webhookID]
	if len(list) == 0 {
		h.mu.Unlock()
		return herald.ListenAnswer{}, errNoListener
	}
	i := h.turn[webhookID] % len(list)
	h.turn[webhookID] = i + 1
	l := list[i]
	h.waiting[req.ID] = x
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.waiting, req.ID)
		h.mu.Unlock()
	}()

	timeout := time.Duration(req.TimeoutSeconds) * time.Second
	select {
	case l.requests <- req:
	case <-l.gone:
		return herald.ListenAnswer{}, errors.New("the herald listen this attempt went to disconnected before it took it")
	case <-ctx.Done():
		return herald.ListenAnswer{}, fmt.Errorf("the herald listen connected to this webhook did not take the request within %s (it is busy or its connection is stuck)", formatDuration(timeout))
	}
	select {
	case a := <-x.answer:
		return a, nil
	case <-l.gone:
		select {
		case a := <-x.answer: // answered just before it went
			return a, nil
		default:
		}
		return herald.ListenAnswer{}, errors.New("the herald listen this attempt went to disconnected before it answered")
	case <-ctx.Done():
		return herald.ListenAnswer{}, fmt.Errorf("herald listen did not answer within %s", formatDuration(timeout))
	}
}

// maxListenError bounds the text kept of a listener's error.
const maxListenError = 500

// viaListener makes attempt a of ev to w, a `listen:` webhook, through a
// listener instead of the network: the same signed request (headers and
// body) goes to the listener, and its answer is judged as an HTTP answer
// would be. It returns the answer's Retry-After, and whether the
// webhook's timeout ran out waiting for the listener (as do says of a
// receiver): a slow listener is paced like a slow receiver, a missing one
// is not.
func (s *sender) viaListener(ctx context.Context, a *herald.Attempt, w *herald.Webhook, ev *herald.Event, signer queue.Signer, body []byte) (string, bool) {
	h := http.Header{}
	if err := signRequest(h, w, ev, signer, a.StartedAt, body); err != nil {
		a.Error = err.Error()
		return "", false
	}
	// traceparent too, as send.go adds it: the local receiver's spans join
	// the attempt's trace.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	timeoutSeconds := cmp.Or(w.TimeoutSeconds, herald.DefaultTimeoutSeconds)
	req := &herald.ListenRequest{
		ID:              herald.NewID("lsn", a.StartedAt),
		DeliveryID:      deliveryIDFrom(ctx),
		Attempt:         a.N,
		EventID:         ev.ID,
		EventSubtype:    ev.Subtype,
		Headers:         make(map[string]string, len(h)),
		QueryParameters: w.QueryParameters,
		Body:            string(body),
		TimeoutSeconds:  timeoutSeconds,
	}
	for name, values := range h {
		req.Headers[strings.ToLower(name)] = strings.Join(values, ", ")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(timeoutSeconds)*time.Second)
	defer cancel()
	ans, err := s.listen.exchange(ctx, w.ID, req)
	if err != nil {
		a.Error = err.Error()
		return "", errors.Is(ctx.Err(), context.DeadlineExceeded)
	}
	a.StatusCode = ans.StatusCode
	kept := ans.Body
	if len(kept) > herald.MaxResponseBody {
		kept = kept[:herald.MaxResponseBody]
	}
	a.ResponseBody = responseText([]byte(kept))
	switch code := ans.StatusCode; {
	case code == 0:
		e := cmp.Or(ans.Error, "no answer")
		if len(e) > maxListenError {
			e = e[:maxListenError]
		}
		a.Error = "herald listen could not reach its local URL: " + strings.ToValidUTF8(e, "\uFFFD")
	case code >= 200 && code < 300:
	case code >= 300 && code < 400:
		a.Error = fmt.Sprintf("the local receiver answered %s; redirects are not followed", statusText(code))
	default:
		a.Error = "receiver answered " + statusText(code)
	}
	return ans.RetryAfter, false
}

// deliveryKey carries the delivery an attempt is of, for the listener's
// log line (send's other callers need not know it).
type deliveryKey struct{}

// withDeliveryID returns ctx naming the delivery being sent.
func withDeliveryID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, deliveryKey{}, id)
}

func deliveryIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(deliveryKey{}).(string)
	return id
}

// Listen connects a listener of the `listen:` webhook with this ID to this
// node; it implements herald.Listeners.
func (e *Engine) Listen(webhookID string) (<-chan *herald.ListenRequest, <-chan struct{}, func()) {
	return e.sender.listen.listen(webhookID)
}

// EndListens disconnects every listener of this node and refuses new
// ones, so their streams end: for the HTTP server's shutdown, which waits
// for every request to finish.
func (e *Engine) EndListens() { e.sender.listen.end() }

// Answer passes a listener's answer to the attempt waiting for it; it
// implements herald.Listeners.
func (e *Engine) Answer(webhookID, id string, a herald.ListenAnswer) error {
	return e.sender.listen.answer(webhookID, id, a)
}
