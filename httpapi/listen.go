package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/heraldhooks/herald"
)

// listenWriteTimeout bounds each write to a listen stream: a listener that
// stops reading (a laptop gone to sleep, a dead connection) is noticed
// by the next write or keep-alive, and its stream ends.
const listenWriteTimeout = 10 * time.Second

// listenStream is GET .../webhooks/{name}/listen: the server-sent events
// stream `herald listen` reads. Each event ("attempt") carries one
// herald.ListenRequest as JSON; a comment every herald.ListenKeepAlive
// keeps it alive. It ends when the listener goes, or this node shuts
// down. Only a `listen:` webhook has a stream; its events carry health
// data, so connecting is audited and needs the admin role, as reading the
// webhook's secret does.
func (s *server) listenStream(w http.ResponseWriter, r *http.Request) error {
	if s.listeners == nil {
		return herald.Errorf(herald.EUNAVAILABLE, "herald listen is not available on this node.")
	}
	name := r.PathValue("name")
	wh, err := s.store.GetWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), name)
	if err != nil {
		return err
	}
	if wh.URL != herald.ListenURL {
		return herald.Errorf(herald.EUNPROCESSABLE, "Webhook %q sends to its url, not to herald listen; to receive its deliveries here, PATCH its url to %q first.", name, herald.ListenURL)
	}
	rc := http.NewResponseController(w)
	// The server's read timeout would end the stream; it reads nothing
	// more of the request anyway.
	if err := rc.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("listen stream: clear the read deadline: %w", err)
	}
	requests, done, stop := s.listeners.Listen(wh.ID)
	defer stop()
	s.record(r, "webhook.listen")
	// What waited for a listener goes now, not at its next retry, which
	// may be hours away after a long sleep.
	if n, err := s.store.RetryWebhookNow(r.Context(), wh.Tenant, wh.Instance, wh.Name); err != nil {
		s.log.Warn("listen: could not make the webhook's waiting deliveries due now; they go at their next retry",
			"tenant", wh.Tenant, "instance", wh.Instance, "webhook", wh.Name, "err", err)
	} else if n > 0 {
		s.log.Info("listen: a listener connected; the webhook's waiting deliveries are due now",
			"tenant", wh.Tenant, "instance", wh.Instance, "webhook", wh.Name, "deliveries", n)
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not buffer it
	w.WriteHeader(http.StatusOK)
	send := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(listenWriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(": connected to webhook %s\n\n", name) {
		return nil
	}
	keepAlive := time.NewTicker(herald.ListenKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-done:
			return nil
		case <-keepAlive.C:
			if !send(": keep-alive\n\n") {
				return nil
			}
		case req := <-requests:
			b, err := json.Marshal(req)
			if err != nil {
				return nil // the attempt fails when the stream ends
			}
			if !send("id: %s\nevent: attempt\ndata: %s\n\n", req.ID, b) {
				return nil
			}
		}
	}
}

// listenAnswer is POST .../webhooks/{name}/listen/{id}: a listener says
// what its local URL answered to attempt id (a herald.ListenAnswer). The
// engine records it as the attempt. 204; 404 when no such attempt waits
// (it timed out, or was answered already).
func (s *server) listenAnswer(w http.ResponseWriter, r *http.Request) error {
	if s.listeners == nil {
		return herald.Errorf(herald.EUNAVAILABLE, "herald listen is not available on this node.")
	}
	var a herald.ListenAnswer
	if err := decodeJSON(w, r, &a, bodyRequired); err != nil {
		return err
	}
	switch {
	case a.StatusCode != 0 && (a.StatusCode < 100 || a.StatusCode > 599):
		return herald.FieldErrorf("statusCode", "statusCode must be an HTTP status from 100 to 599, or 0 when the local URL gave no answer; it is %d.", a.StatusCode)
	case a.StatusCode == 0 && a.Error == "":
		return herald.FieldErrorf("error", "error is required when statusCode is 0: say why the local URL gave no answer.")
	case a.DurationMs < 0:
		return herald.FieldErrorf("durationMs", "durationMs must not be negative.")
	}
	wh, err := s.store.GetWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := s.listeners.Answer(wh.ID, r.PathValue("id"), a); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
