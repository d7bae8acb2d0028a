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

// Page sizes of GET .../deliveries.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

var deliveryParams = []string{"webhook", "status", "eventSubtype", "eventEntity", "eventId", "from", "to", "cursor", "limit"}

// listDeliveries returns a page of an instance's deliveries, newest first,
// filtered as parseDeliveryFilter reads the query.
func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	f, err := parseDeliveryFilter(r.URL.Query(), r.PathValue("tenant"), r.PathValue("instance"))
	if err != nil {
		return err
	}
	if _, err := s.store.GetInstance(r.Context(), f.Tenant, f.Instance); err != nil {
		return err
	}
	list, next, err := s.store.ListDeliveries(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, deliveryPage{Deliveries: nonNil(list), NextCursor: next})
}

// parseDeliveryFilter reads the query of GET .../deliveries for the
// instance named by the path. Every parameter is checked: an unknown or
// malformed one is an EINVALID error naming it, rather than a filter
// silently ignored. The cursor is the store's to read.
func parseDeliveryFilter(q url.Values, tenant, instance string) (herald.DeliveryFilter, error) {
	f := herald.DeliveryFilter{
		Tenant:   tenant,
		Instance: instance,
		Limit:    defaultPageSize,
	}
	for name, vs := range q {
		if !slices.Contains(deliveryParams, name) {
			err := herald.FieldErrorf(name, "Unknown query parameter %q; use %s.", name, strings.Join(deliveryParams, ", "))
			err.UnknownField = true
			return herald.DeliveryFilter{}, err
		}
		if len(vs) > 1 {
			return herald.DeliveryFilter{}, herald.FieldErrorf(name, "Query parameter %s is given %d times; give it once.", name, len(vs))
		}
	}
	if v := q.Get("webhook"); v != "" {
		if err := herald.ValidateName("webhook", v); err != nil {
			return herald.DeliveryFilter{}, err
		}
		f.Webhook = v
	}
	if v := q.Get("status"); v != "" {
		f.Status = strings.ToUpper(v)
		if !slices.Contains(herald.Statuses, f.Status) {
			return herald.DeliveryFilter{}, herald.FieldErrorf("status", "status %q is not a delivery status; use one of %s.", v, strings.Join(herald.Statuses, ", "))
		}
	}
	if v := q.Get("eventSubtype"); v != "" {
		if _, ok := herald.Catalog.EntityOf(v); !ok {
			return herald.DeliveryFilter{}, herald.FieldErrorf("eventSubtype", "eventSubtype %q is not in the event catalog (see GET /v1/catalog).", v)
		}
		f.EventSubtype = v
	}
	if v := q.Get("eventEntity"); v != "" {
		if !herald.Catalog.HasEntity(v) {
			return herald.DeliveryFilter{}, herald.FieldErrorf("eventEntity", "eventEntity %q is not in the event catalog; known entities: %s.", v, strings.Join(herald.Catalog.EntityNames(), ", "))
		}
		f.EventEntity = v
	}
	f.EventID = q.Get("eventId")
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := parseTime(p.name, v)
			if err != nil {
				return herald.DeliveryFilter{}, err
			}
			*p.dst = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return herald.DeliveryFilter{}, herald.FieldErrorf("to", "to (%s) must be after from (%s).", q.Get("to"), q.Get("from"))
	}
	f.Cursor = q.Get("cursor")
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return herald.DeliveryFilter{}, herald.FieldErrorf("limit", "limit must be a whole number from 1 to %d; it is %q.", maxPageSize, v)
		}
		f.Limit = n
	}
	return f, nil
}

type deliveryPage struct {
	Deliveries []*herald.Delivery `json:"deliveries"`
	// NextCursor is absent on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}

// deliveryWithAttempts always carries "attempts", also when there are none
// yet (herald.Delivery omits an empty list).
type deliveryWithAttempts struct {
	*herald.Delivery
	Attempts []herald.Attempt `json:"attempts"`
}

func (s *server) getDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := s.store.GetDelivery(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, deliveryWithAttempts{Delivery: d, Attempts: nonNil(d.Attempts)})
}

// resendDelivery makes a delivery due now with a fresh retry window.
func (s *server) resendDelivery(w http.ResponseWriter, r *http.Request) error {
	if err := decodeJSON(w, r, &struct{}{}, bodyOptional); err != nil {
		return err
	}
	d, err := s.store.ResendDelivery(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, deliveryWithAttempts{Delivery: d, Attempts: nonNil(d.Attempts)})
}
