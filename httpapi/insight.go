package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
)

// Defaults of the insight endpoints.
const (
	defaultStatsWindow    = 24 * time.Hour
	defaultTimelineWindow = time.Hour
	defaultTimelineStep   = time.Minute
)

// checkParams refuses query parameters not in allowed, and repeated ones,
// naming them: a filter silently ignored is worse than a 400.
func checkParams(q url.Values, allowed ...string) error {
	for name, vs := range q {
		if !slices.Contains(allowed, name) {
			err := herald.FieldErrorf(name, "Unknown query parameter %q; use %s.", name, strings.Join(allowed, ", "))
			err.UnknownField = true
			return err
		}
		if len(vs) > 1 {
			return herald.FieldErrorf(name, "Query parameter %s is given %d times; give it once.", name, len(vs))
		}
	}
	return nil
}

// timeParam returns the RFC 3339 time in query parameter name, or def when
// it is absent.
func timeParam(q url.Values, name string, def time.Time) (time.Time, error) {
	if v := q.Get(name); v != "" {
		return parseTime(name, v)
	}
	return def, nil
}

// webhookStats returns one webhook's attempts since a time (default the
// last 24 hours), its success rate and its newest delivery.
func (s *server) webhookStats(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkParams(q, "since"); err != nil {
		return err
	}
	since, err := timeParam(q, "since", s.now().Add(-defaultStatsWindow))
	if err != nil {
		return err
	}
	tenant, instance, name := r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name")
	if _, err := s.store.GetWebhook(r.Context(), tenant, instance, name); err != nil {
		return err
	}
	all, err := s.store.WebhookStats(r.Context(), tenant, instance, since)
	if err != nil {
		return err
	}
	for _, st := range all {
		if st.Webhook == name {
			return writeJSON(w, http.StatusOK, st)
		}
	}
	return herald.Errorf(herald.ENOTFOUND, "webhook %q not found in instance %q of tenant %q.", name, instance, tenant)
}

// webhookTimeline returns a webhook's attempts counted by outcome per step
// (default a minute) from from to to (default the last hour).
func (s *server) webhookTimeline(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkParams(q, "from", "to", "stepSeconds"); err != nil {
		return err
	}
	step := defaultTimelineStep
	if v := q.Get("stepSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 60 || n%60 != 0 {
			return herald.FieldErrorf("stepSeconds", "stepSeconds must be a whole number of minutes, in seconds (60, 120, 300...): attempts are counted by the minute; it is %q.", v)
		}
		step = time.Duration(n) * time.Second
	}
	now := s.now()
	to, err := timeParam(q, "to", now.Truncate(step).Add(step))
	if err != nil {
		return err
	}
	from, err := timeParam(q, "from", to.Add(-defaultTimelineWindow))
	if err != nil {
		return err
	}
	buckets, err := s.store.DeliveryTimeline(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), from, to, step)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"from": from.UTC(), "to": to.UTC(), "stepSeconds": int64(step / time.Second), "buckets": nonNil(buckets),
	})
}

// findEvents returns the events of an instance with an event id or a
// producer's source id, newest first.
func (s *server) findEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkParams(q, "eventId", "sourceId", "limit"); err != nil {
		return err
	}
	eq := herald.EventQuery{Tenant: r.PathValue("tenant"), Instance: r.PathValue("instance"),
		ID: q.Get("eventId"), SourceID: q.Get("sourceId"), Limit: defaultPageSize}
	if eq.ID == "" && eq.SourceID == "" {
		return herald.FieldErrorf("sourceId", "Give eventId or sourceId (or both) to find events, like ?sourceId=49ec...; to read one event, GET .../events/{id}.")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return herald.FieldErrorf("limit", "limit must be a whole number from 1 to %d; it is %q.", maxPageSize, v)
		}
		eq.Limit = n
	}
	events, err := s.store.FindEvents(r.Context(), eq)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"events": nonNil(events)})
}

// publishedVersion returns the latest published designer version with its
// webhooks: what GET .../designer/draft compares the draft with.
func (s *server) publishedVersion(w http.ResponseWriter, r *http.Request) error {
	v, err := s.store.PublishedVersion(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
