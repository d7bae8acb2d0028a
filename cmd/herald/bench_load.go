package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/client"
)

// benchSourcePrefix starts the sourceId of every event the bench posts;
// the event's index follows, so the receiver finds when it was posted.
const benchSourcePrefix = "bench-"

// pacedInFlight bounds the POSTs in flight in a paced run: each event is
// posted at its time on its own, whatever the previous ones are doing.
const pacedInFlight = 256

// loginAll signs in as the admin API client on every node.
func loginAll(ctx context.Context, urls []string, secret string) ([]*client.Client, error) {
	clients := make([]*client.Client, len(urls))
	for i, u := range urls {
		c, err := client.New(u, client.WithAPIClient("admin", secret))
		if err != nil {
			return nil, err
		}
		if _, err := c.Token(ctx); err != nil {
			return nil, fmt.Errorf("sign in to %s as admin (is Herald running there, with this admin secret?): %w", u, err)
		}
		clients[i] = c
	}
	return clients, nil
}

// setUpWebhooks creates a tenant and an instance, designs and publishes
// one webhook per endpoint (each triggered by every patient event), points
// each at its path on the receiver, gives the endpoint its secret and
// activates it, all through the API. It returns the instance's events path.
func setUpWebhooks(ctx context.Context, c *client.Client, recvURL string, eps []*benchEndpoint) (string, error) {
	const instance = "load"
	tenant := "bench-" + randomHex(4)
	if _, err := c.CreateTenant(ctx, tenant); err != nil {
		return "", fmt.Errorf("create tenant %s: %w", tenant, err)
	}
	if _, err := c.CreateInstance(ctx, tenant, instance); err != nil {
		return "", fmt.Errorf("create instance: %w", err)
	}
	for _, ep := range eps {
		_, err := c.CreateDesignerWebhook(ctx, tenant, herald.DesignerWebhook{Name: ep.name, Title: "herald bench " + ep.name,
			Triggers: []herald.Trigger{{EventEntity: "PATIENT"}}})
		if err != nil {
			return "", fmt.Errorf("design webhook %s: %w", ep.name, err)
		}
	}
	if _, err := c.Publish(ctx, tenant, "herald bench"); err != nil {
		return "", fmt.Errorf("publish: %w", err)
	}
	for _, ep := range eps {
		url := recvURL + ep.path
		if _, err := c.UpdateWebhook(ctx, tenant, instance, ep.name, herald.WebhookUpdate{URL: &url}); err != nil {
			return "", fmt.Errorf("point webhook %s at the receiver: %w", ep.name, err)
		}
		secret, err := c.WebhookSecret(ctx, tenant, instance, ep.name)
		if err != nil {
			return "", fmt.Errorf("read webhook %s's secret: %w", ep.name, err)
		}
		ep.secret = secret
		if _, err := c.ActivateWebhook(ctx, tenant, instance, ep.name); err != nil {
			return "", fmt.Errorf("activate webhook %s: %w", ep.name, err)
		}
	}
	return "/v1/tenants/" + tenant + "/instances/" + instance + "/events", nil
}

// benchLoad posts the run's events and keeps when each was posted.
type benchLoad struct {
	events  int
	batch   int
	posters int
	rate    int
	clients []*client.Client // one per node, signed in; POSTs go to them in turn
	path    string           // the instance's events path
	hc      *http.Client

	t0        time.Time
	postTimes []atomic.Int64 // load clock when each event was last posted; 0 before

	start      time.Duration // load clock at the first POST
	lastAccept atomic.Int64  // load clock at the last 202
	posted     atomic.Int64  // events sent at least once
	accepted   atomic.Int64  // events answered 202
	retried    atomic.Int64  // answers 503 or 429, retried after a pause
	rejected   atomic.Int64  // any other answer that is not 202
}

func newBenchLoad(cfg benchConfig, clients []*client.Client, eventsPath string) *benchLoad {
	conns := cfg.Posters
	if cfg.Rate > 0 {
		conns = pacedInFlight
	}
	l := &benchLoad{
		events: cfg.totalEvents(), batch: cfg.Batch, posters: cfg.Posters, rate: cfg.Rate,
		clients: clients, path: eventsPath,
		hc: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			MaxIdleConns: conns * len(clients), MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute}},
		t0: time.Now(),
	}
	l.postTimes = make([]atomic.Int64, l.events)
	return l
}

// clock is the time since the load was created, on the monotonic clock.
func (l *benchLoad) clock() time.Duration { return time.Since(l.t0) }

// postedAt returns when event i was posted, if the bench posted it.
func (l *benchLoad) postedAt(i int) (time.Duration, bool) {
	if i < 0 || i >= len(l.postTimes) {
		return 0, false
	}
	t := l.postTimes[i].Load()
	return time.Duration(t), t > 0
}

// run posts every event, in a burst or paced, and returns when all were
// accepted, or at the first answer that is neither 202 nor worth a retry.
func (l *benchLoad) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	l.start = l.clock()
	if l.rate > 0 {
		l.paced(ctx, cancel)
	} else {
		l.burst(ctx, cancel)
	}
	return context.Cause(ctx)
}

// burst posts arrays of batch events from posters clients, as fast as the
// API answers.
func (l *benchLoad) burst(ctx context.Context, fail context.CancelCauseFunc) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for p := range l.posters {
		wg.Go(func() {
			for ctx.Err() == nil {
				from := int(next.Add(int64(l.batch))) - l.batch
				if from >= l.events {
					return
				}
				if err := l.post(ctx, p%len(l.clients), from, min(from+l.batch, l.events)); err != nil {
					fail(err)
				}
			}
		})
	}
	wg.Wait()
}

// paced posts one event per POST at rate events per second, each at its
// own time, so a slow answer does not delay the next event.
func (l *benchLoad) paced(ctx context.Context, fail context.CancelCauseFunc) {
	inFlight := make(chan struct{}, pacedInFlight)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range l.events {
		due := l.start + time.Duration(int64(i)*int64(time.Second)/int64(l.rate))
		if wait := due - l.clock(); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-inFlight }()
			if err := l.post(ctx, i%len(l.clients), i, i+1); err != nil {
				fail(err)
			}
		})
	}
}

// post sends events [from, to) to node, as an array in a burst or as one
// object when paced, and retries while Herald answers 503 or 429.
func (l *benchLoad) post(ctx context.Context, node, from, to int) error {
	body := l.body(from, to)
	l.posted.Add(int64(to - from))
	for attempt := 0; ; attempt++ {
		now := l.clock()
		for i := from; i < to; i++ {
			l.postTimes[i].Store(int64(now))
		}
		status, answer, err := l.send(ctx, node, body)
		if err != nil {
			if ctx.Err() != nil {
				return nil // the run is already stopping; its cause says why
			}
			return fmt.Errorf("post events to %s: %w", l.clients[node].BaseURL(), err)
		}
		switch {
		case status == http.StatusAccepted && !bytes.Contains(answer, []byte(`"error"`)):
			l.accepted.Add(int64(to - from))
			l.noteAccept(l.clock())
			return nil
		case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
			l.retried.Add(1)
			select {
			case <-time.After(min(time.Second, time.Duration(attempt+1)*50*time.Millisecond)):
			case <-ctx.Done():
				return nil
			}
		default:
			l.rejected.Add(1)
			return fmt.Errorf("post events: Herald answered %d, which the bench does not retry: %s", status, strings.TrimSpace(string(answer[:min(len(answer), 500)])))
		}
	}
}

// noteAccept moves lastAccept forward to t.
func (l *benchLoad) noteAccept(t time.Duration) {
	for {
		last := l.lastAccept.Load()
		if int64(t) <= last || l.lastAccept.CompareAndSwap(last, int64(t)) {
			return
		}
	}
}

// body is the JSON of events [from, to): an array in a burst, one object
// when paced. Each event's sourceId carries its index.
func (l *benchLoad) body(from, to int) []byte {
	b := make([]byte, 0, (to-from)*128+2)
	if l.rate == 0 {
		b = append(b, '[')
	}
	for i := from; i < to; i++ {
		if i > from {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"eventSubtype":"PATIENT_CREATED","sourceId":"%s%d","patientId":"p-%d","sourceName":"Bench Patient"}`,
			benchSourcePrefix, i, i)
	}
	if l.rate == 0 {
		b = append(b, ']')
	}
	return b
}

// send POSTs body to node's events path and returns the answer. It posts
// the prepared bytes itself rather than through the client's SendEvents:
// the load generator runs on the machine it measures, so it spends no CPU
// encoding events or decoding answers it only counts.
func (l *benchLoad) send(ctx context.Context, node int, body []byte) (int, []byte, error) {
	c := l.clients[node]
	token, err := c.Token(ctx)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.BaseURL()+l.path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, answer, err
}
