package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
)

const (
	// ceilingPath answers 200 at once without verifying anything: the
	// loopback ceiling measures HTTP alone.
	ceilingPath  = "/ceiling"
	ceilingConns = 32
	// slowAnswer is how long the slow webhook's receiver takes to answer.
	slowAnswer = 2 * time.Second
)

// benchEndpoint is one webhook of the run and what the receiver saw at
// its path.
type benchEndpoint struct {
	name   string // the webhook's name
	path   string // where the receiver serves it
	slow   bool   // answers after slowAnswer; the run does not wait for its deliveries
	secret string // set before the webhook is activated

	mu         sync.Mutex
	latencies  []time.Duration // creation to receipt, first receipt of each delivery
	duplicates int             // requests for a webhook-id already received
}

// benchEndpoints returns the webhooks of the configured mode.
func benchEndpoints(cfg benchConfig) []*benchEndpoint {
	var eps []*benchEndpoint
	for i := range cfg.fastWebhooks() {
		eps = append(eps, &benchEndpoint{name: fmt.Sprintf("fast-%d", i), path: fmt.Sprintf("/fast/%d", i)})
	}
	if cfg.Mode == modeSlow {
		eps = append(eps, &benchEndpoint{name: "slow", path: "/slow", slow: true})
	}
	return eps
}

// record notes a verified delivery: its latency when it is the first
// request for its webhook-id at this endpoint, a duplicate otherwise.
func (e *benchEndpoint) record(first bool, latency time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !first {
		e.duplicates++
		return
	}
	e.latencies = append(e.latencies, latency)
}

// benchReceiver is the receiver of every webhook of the run: the test
// kit's receiver (heraldtest) on loopback, which verifies each request's
// signature with the public signature package against its endpoint's
// secret and counts duplicates, keeping no request; the bench notes
// latencies and answers 200. Its ceiling path answers at once, verifying
// nothing.
type benchReceiver struct {
	url string
	rc  *heraldtest.Receiver

	// Set by expect before the first event is posted.
	routes atomic.Pointer[map[string]*benchEndpoint]
	load   *benchLoad
	want   int64 // deliveries to fast webhooks the run waits for

	delivered  atomic.Int64 // first receipts at fast webhooks
	finishedAt atomic.Int64 // load clock when the last awaited delivery arrived
	unknown    atomic.Int64 // requests to no webhook's path, or for no event the bench posted
	done       chan struct{}
	doneOnce   sync.Once
}

func startBenchReceiver() (*benchReceiver, error) {
	r := &benchReceiver{done: make(chan struct{})}
	ceiling := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body) // 200
	})
	rc, err := heraldtest.StartReceiver(heraldtest.ReceiverConfig{Forget: true, Respond: r.respond,
		Other: map[string]http.Handler{ceilingPath: ceiling}})
	if err != nil {
		return nil, fmt.Errorf("start the receiver: %w", err)
	}
	r.rc, r.url = rc, rc.URL
	return r, nil
}

// expect routes the endpoints' paths, gives the receiver their secrets and
// arms the count of deliveries to wait for: every event to every fast
// webhook.
func (r *benchReceiver) expect(eps []*benchEndpoint, load *benchLoad, events int) {
	routes := map[string]*benchEndpoint{}
	for _, ep := range eps {
		routes[ep.path] = ep
		r.rc.SetPathSecrets(ep.path, ep.secret)
		if !ep.slow {
			r.want += int64(events)
		}
	}
	r.load = load
	r.routes.Store(&routes)
}

func (r *benchReceiver) close() { r.rc.Close() }

// signatureFailures returns how many requests failed verification.
func (r *benchReceiver) signatureFailures() int64 { return int64(r.rc.SignatureFailures()) }

// respond answers a request the kit's receiver verified (or, at a path
// with no secret, one no webhook of the run has).
func (r *benchReceiver) respond(w http.ResponseWriter, req *http.Request, got *heraldtest.Request) {
	var ep *benchEndpoint
	if routes := r.routes.Load(); routes != nil {
		ep = (*routes)[got.Path]
	}
	if ep == nil {
		r.unknown.Add(1)
		http.Error(w, "no webhook of this bench at "+got.Path, http.StatusNotFound)
		return
	}
	at := got.At.Sub(r.load.t0)
	posted, ok := r.load.postedAt(benchEventIndex(got.Body))
	if !ok {
		r.unknown.Add(1)
		http.Error(w, "not an event this bench posted", http.StatusBadRequest)
		return
	}
	first := got.Seen == 1
	ep.record(first, max(0, at-posted))
	if first && !ep.slow {
		if r.delivered.Add(1) == r.want {
			r.finishedAt.Store(int64(at))
			r.doneOnce.Do(func() { close(r.done) })
		}
	}
	if ep.slow {
		select {
		case <-time.After(slowAnswer):
		case <-req.Context().Done():
		}
	}
}

// sourceIDKey starts the sourceId of the bench's events as Herald's
// encoder writes it.
var sourceIDKey = []byte(`"sourceId":"` + benchSourcePrefix)

// benchEventIndex returns the index of the event a delivery carries, from
// its sourceId, or -1. It looks for the key directly and decodes the
// whole body only when that fails.
func benchEventIndex(body []byte) int {
	if i := bytes.Index(body, sourceIDKey); i >= 0 {
		rest := body[i+len(sourceIDKey):]
		if end := bytes.IndexByte(rest, '"'); end >= 0 {
			if n, err := strconv.Atoi(string(rest[:end])); err == nil {
				return n
			}
		}
	}
	var p struct {
		SourceID string `json:"sourceId"`
	}
	if json.Unmarshal(body, &p) == nil {
		if digits, ok := bytes.CutPrefix([]byte(p.SourceID), []byte(benchSourcePrefix)); ok {
			if n, err := strconv.Atoi(string(digits)); err == nil {
				return n
			}
		}
	}
	return -1
}

// measureCeiling posts 1 KiB bodies to url from conns keep-alive
// connections for d and returns the requests answered per second: what
// HTTP on loopback allows on this machine right now.
func measureCeiling(ctx context.Context, url string, conns int, d time.Duration) (float64, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	body := bytes.Repeat([]byte("x"), 1024)
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var count atomic.Int64
	errc := make(chan error, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Go(func() {
			for runCtx.Err() == nil {
				if err := postOnce(runCtx, client, url, body); err != nil {
					if runCtx.Err() == nil {
						errc <- err
					}
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	select {
	case err := <-errc:
		return 0, fmt.Errorf("measure the loopback ceiling: %w", err)
	default:
	}
	return float64(count.Load()) / elapsed.Seconds(), nil
}

// postOnce posts body to url and reads the answer, which must be 200.
func postOnce(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New("the receiver answered " + resp.Status)
	}
	return nil
}
