package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/client"
)

const listenUsage = `Usage: herald listen --webhook TENANT/INSTANCE/WEBHOOK --forward LOCAL_URL [flags]

Receives a webhook's deliveries on this machine, with no public address:
the webhook's url is "listen:", and Herald hands each attempt to the
listeners connected to it over GET .../webhooks/{name}/listen instead of
dialing out. Each request is posted, signed and unchanged, to LOCAL_URL,
and the local answer goes back to Herald, which records it as the attempt
(retrying a failed one on the webhook's schedule). One line per attempt:
time, event id, event subtype, attempt, local status, milliseconds.

While no listener is connected, attempts fail and the deliveries wait for
their retries: nothing is lost while this machine sleeps. Several
listeners of one webhook share its deliveries. The stream is reconnected,
with backoff, when it drops; Ctrl-C stops.

Credentials: HERALD_TOKEN, or an API client's name (--api-client, env
HERALD_API_CLIENT) and secret (env HERALD_API_SECRET), with the admin role
(who may read the webhook's secret).

Example:
  HERALD_API_CLIENT=admin HERALD_API_SECRET=... herald listen \
    --server https://herald.example.com --webhook acme/sandbox/wh-patient-sync \
    --forward http://localhost:3000/hooks

Flags:
`

// Reconnection backoff of herald listen.
const (
	listenMinBackoff = time.Second
	listenMaxBackoff = 30 * time.Second
)

// listenSilence is how long the stream may say nothing (Herald sends a
// keep-alive every herald.ListenKeepAlive) before the listener takes it
// for dead and connects again.
const listenSilence = 2*herald.ListenKeepAlive + 5*time.Second

// runListen is `herald listen`.
func runListen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, listenUsage)
		fs.PrintDefaults()
	}
	server, apiClient := cliClientFlags(fs)
	webhook := fs.String("webhook", "", "the webhook, as TENANT/INSTANCE/WEBHOOK (its url must be \"listen:\")")
	forward := fs.String("forward", "", "the local URL each request is posted to, such as http://localhost:3000/hooks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("listen takes no arguments, only flags; got %q", fs.Arg(0))
	}
	parts := strings.Split(*webhook, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		fs.Usage()
		return fmt.Errorf("--webhook %q is not TENANT/INSTANCE/WEBHOOK, such as acme/sandbox/wh-patient-sync", *webhook)
	}
	if u, err := url.Parse(*forward); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fs.Usage()
		return fmt.Errorf("--forward %q is not an http:// or https:// URL", *forward)
	}
	c, err := newCLIClient(*server, *apiClient)
	if err != nil {
		return err
	}
	l := &listenCLI{
		api:  c,
		path: "/v1/tenants/" + url.PathEscape(parts[0]) + "/instances/" + url.PathEscape(parts[1]) + "/webhooks/" + url.PathEscape(parts[2]) + "/listen",
		name: *webhook, forward: *forward,
		stream: &http.Client{}, // no timeout: the stream lasts
		local: &http.Client{
			// The local receiver's redirect is its answer, as it would
			// be for Herald.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		stdout: stdout, stderr: stderr,
	}
	return l.run(ctx)
}

// listenCLI is one `herald listen`: the stream loop runs on the caller's
// goroutine, and each attempt is forwarded and answered on its own.
type listenCLI struct {
	api           *client.Client
	path          string // the stream's path; answers go to path/{id}
	name, forward string
	stream, local *http.Client
	stdout        io.Writer
	stderr        io.Writer

	outMu sync.Mutex // one line at a time on stdout and stderr
	wg    sync.WaitGroup
}

func (l *listenCLI) say(w io.Writer, format string, args ...any) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	fmt.Fprintf(w, format+"\n", args...)
}

// run connects and reconnects until ctx ends (nil), or Herald refuses the
// stream for a reason waiting will not fix (its error).
func (l *listenCLI) run(ctx context.Context) error {
	defer l.wg.Wait()
	backoff := listenMinBackoff
	for {
		connected, err := l.listen(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var fatal *fatalListenError
		if errors.As(err, &fatal) {
			return fatal.err
		}
		if connected {
			backoff = listenMinBackoff
		}
		l.say(l.stderr, "herald listen: %v; connecting again in %s", err, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// fatalListenError is a refusal reconnecting cannot fix (403, 404, 422).
type fatalListenError struct{ err error }

func (e *fatalListenError) Error() string { return e.err.Error() }

// listen reads the stream once, until it ends; connected says whether
// Herald accepted it.
func (l *listenCLI) listen(ctx context.Context) (connected bool, err error) {
	resp, err := l.open(ctx)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	l.say(l.stderr, "herald listen: connected to %s on %s; forwarding to %s", l.name, l.api.BaseURL(), l.forward)

	// A stream that says nothing for listenSilence is dead (a sleeping
	// laptop, a proxy that dropped it): closing the body ends the read.
	silence := time.AfterFunc(listenSilence, func() { resp.Body.Close() })
	defer silence.Stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event, data string
	for sc.Scan() {
		silence.Reset(listenSilence)
		line := sc.Text()
		switch {
		case line == "":
			if event == "attempt" && data != "" {
				var req herald.ListenRequest
				if err := json.Unmarshal([]byte(data), &req); err != nil {
					l.say(l.stderr, "herald listen: an attempt could not be read (%v); Herald retries it", err)
				} else {
					l.wg.Go(func() { l.handle(ctx, &req) })
				}
			}
			event, data = "", ""
		case strings.HasPrefix(line, ":"): // a comment: keep-alive
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return true, fmt.Errorf("the stream broke: %w", err)
	}
	return true, errors.New("the stream ended")
}

// open connects the stream. The client takes a new token when its own
// is about to end.
func (l *listenCLI) open(ctx context.Context) (*http.Response, error) {
	tok, err := l.api.Token(ctx)
	if err != nil {
		if s := client.StatusOf(err); s == http.StatusUnauthorized || s == http.StatusForbidden {
			return nil, &fatalListenError{fmt.Errorf("sign in: %w", err)}
		}
		return nil, fmt.Errorf("sign in: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.api.BaseURL()+l.path, nil)
	if err != nil {
		return nil, &fatalListenError{err}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := l.stream.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	msg := apiErrorText(resp)
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusBadRequest:
		return nil, &fatalListenError{fmt.Errorf("the server refused to stream %s (%d): %s", l.name, resp.StatusCode, msg)}
	}
	return nil, fmt.Errorf("the server answered %d: %s", resp.StatusCode, msg)
}

// apiErrorText reads a refusal's message and closes its body.
func apiErrorText(resp *http.Response) string {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return strings.TrimSpace(string(raw))
}

// handle posts one attempt to the local URL, prints its line and sends
// the answer back. Only ids, codes and timings are printed: the body may
// carry health data.
func (l *listenCLI) handle(ctx context.Context, req *herald.ListenRequest) {
	ans := l.post(ctx, req)
	status := fmt.Sprint(ans.StatusCode)
	if ans.StatusCode == 0 {
		status = "error: " + ans.Error
	}
	l.say(l.stdout, "%s  %s  %s  attempt %d  %s  %d ms", time.Now().Format("15:04:05"),
		req.EventID, req.EventSubtype, req.Attempt, status, ans.DurationMs)
	err := l.api.Do(ctx, http.MethodPost, l.path+"/"+url.PathEscape(req.ID), nil, ans, nil)
	if err != nil && ctx.Err() == nil {
		l.say(l.stderr, "herald listen: the answer to %s (event %s) did not reach Herald (%v); Herald retries the delivery", req.ID, req.EventID, err)
	}
}

// post sends req to the local URL as Herald would have sent it.
func (l *listenCLI) post(ctx context.Context, req *herald.ListenRequest) herald.ListenAnswer {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(req.TimeoutSeconds, 1))*time.Second)
	defer cancel()
	target := l.forward
	if len(req.QueryParameters) > 0 {
		q := url.Values{}
		for _, p := range req.QueryParameters {
			q.Add(p.Name, p.Value)
		}
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + q.Encode()
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader([]byte(req.Body)))
	if err != nil {
		return herald.ListenAnswer{Error: err.Error(), DurationMs: time.Since(start).Milliseconds()}
	}
	for name, value := range req.Headers {
		r.Header.Set(name, value)
	}
	resp, err := l.local.Do(r)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return herald.ListenAnswer{Error: err.Error(), DurationMs: time.Since(start).Milliseconds()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, herald.MaxResponseBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return herald.ListenAnswer{StatusCode: resp.StatusCode, Body: string(body),
		RetryAfter: resp.Header.Get("Retry-After"), DurationMs: time.Since(start).Milliseconds()}
}
