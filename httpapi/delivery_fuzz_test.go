package httpapi

import (
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

// encodeDeliveryFilter writes f back as the query of GET .../deliveries.
func encodeDeliveryFilter(f herald.DeliveryFilter) url.Values {
	q := url.Values{}
	for name, v := range map[string]string{"webhook": f.Webhook, "status": f.Status, "eventSubtype": f.EventSubtype,
		"eventEntity": f.EventEntity, "eventId": f.EventID, "cursor": f.Cursor} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if !f.From.IsZero() {
		q.Set("from", f.From.Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.Format(time.RFC3339Nano))
	}
	q.Set("limit", strconv.Itoa(f.Limit))
	return q
}

// FuzzDeliveryFilter: the query of GET .../deliveries. A refused query is
// a 400 naming the parameter at fault; an accepted one is a filter within
// bounds (a known status, subtype and entity, a valid webhook name, from
// before to, a page of 1 to 500) that written back as a query reads the
// same.
func FuzzDeliveryFilter(f *testing.F) {
	for _, s := range []string{"", "status=failed&limit=10", "webhook=wh-patient-sync&eventSubtype=PATIENT_CREATED&eventEntity=PATIENT",
		"from=2026-11-26T17:00:00Z&to=2026-11-27T00:00:00.5%2B01:00", "from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z",
		"cursor=ZDE6ZGx2XzE&limit=500", "limit=0", "limit=501", "limit=+7", "limit=1e2", "status=DELIVERED&status=FAILED", "stauts=FAILED",
		"webhook=Bad_Name", "eventSubtype=NOPE", "eventEntity=nope", "from=yesterday", "eventId=evt_1", "%zz=1", "status=%C5%BFent",
		"to=0000-01-01T00:00:00Z", "from=2026-11-26T17:00:00Z&to=2026-11-26T17:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw) // as r.URL.Query(), which drops what does not parse
		flt, err := parseDeliveryFilter(q, "acme", "sandbox")
		if err != nil {
			he := wantRefusal(t, err, []string{herald.EINVALID})
			if _, given := q[he.Field]; !given || he.UnknownField == slices.Contains(deliveryParams, he.Field) {
				t.Fatalf("query %q refused naming %q (unknown: %v): %s", raw, he.Field, he.UnknownField, he.Message)
			}
			return
		}
		if flt.Tenant != "acme" || flt.Instance != "sandbox" || flt.Limit < 1 || flt.Limit > maxPageSize ||
			flt.Status != "" && !slices.Contains(herald.Statuses, flt.Status) ||
			flt.Webhook != "" && herald.ValidateName("webhook", flt.Webhook) != nil ||
			flt.EventEntity != "" && !herald.Catalog.HasEntity(flt.EventEntity) ||
			!flt.From.IsZero() && !flt.To.IsZero() && !flt.From.Before(flt.To) {
			t.Fatalf("query %q accepted as %+v", raw, flt)
		}
		if _, ok := herald.Catalog.EntityOf(flt.EventSubtype); flt.EventSubtype != "" && !ok {
			t.Fatalf("query %q accepted as %+v", raw, flt)
		}
		back, err := parseDeliveryFilter(encodeDeliveryFilter(flt), "acme", "sandbox")
		if err != nil {
			t.Fatalf("query %q read as %+v, which written back as %q is refused: %v", raw, flt, encodeDeliveryFilter(flt).Encode(), err)
		}
		if !back.From.Equal(flt.From) || !back.To.Equal(flt.To) {
			t.Fatalf("query %q: times %v..%v read back as %v..%v", raw, flt.From, flt.To, back.From, back.To)
		}
		back.From, back.To, flt.From, flt.To = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(back, flt) {
			t.Fatalf("query %q read as %+v, written back and read again as %+v", raw, flt, back)
		}
	})
}
