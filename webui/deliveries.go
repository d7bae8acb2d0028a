package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
)

// pageSize is how many deliveries the log shows at a time.
const pageSize = 50

type deliveriesData struct {
	Filter     deliveryFilterForm
	Deliveries []*herald.Delivery
	Webhooks   []string
	Statuses   []string
	Subtypes   []string
	NextURL    string // older deliveries, "" on the last page
	Field      string
	Error      string
}

type deliveryFilterForm struct {
	Webhook, Status, EventSubtype, From, To, Cursor string
}

func (f deliveryFilterForm) Any() bool {
	return f.Webhook != "" || f.Status != "" || f.EventSubtype != "" || f.From != "" || f.To != ""
}

// deliveries is the delivery log with its filters: webhook, status, event
// subtype and a time range (UTC), newest first, a page at a time.
func (u *ui) deliveries(w http.ResponseWriter, r *http.Request) error {
	tenant, instance := r.PathValue("tenant"), r.PathValue("instance")
	q := r.URL.Query()
	d := deliveriesData{Statuses: herald.Statuses, Subtypes: herald.Catalog.Subtypes(""),
		Filter: deliveryFilterForm{Webhook: q.Get("webhook"), Status: q.Get("status"), EventSubtype: q.Get("eventSubtype"),
			From: q.Get("from"), To: q.Get("to"), Cursor: q.Get("cursor")}}
	if access.Can(state(r).principal, access.ReadConfig, tenant) {
		hooks, err := u.store.ListWebhooks(r.Context(), tenant, instance)
		if err != nil {
			return err
		}
		for _, h := range hooks {
			d.Webhooks = append(d.Webhooks, h.Name)
		}
	} else if _, err := u.store.GetInstance(r.Context(), tenant, instance); err != nil {
		return err
	}
	f := herald.DeliveryFilter{Tenant: tenant, Instance: instance, Webhook: d.Filter.Webhook, EventSubtype: d.Filter.EventSubtype,
		Cursor: d.Filter.Cursor, Limit: pageSize}
	err := func() error {
		if f.Webhook != "" {
			if err := herald.ValidateName("webhook", f.Webhook); err != nil {
				return err
			}
		}
		if s := d.Filter.Status; s != "" {
			if !slices.Contains(herald.Statuses, s) {
				return herald.FieldErrorf("status", "Status %q is not a delivery status; choose one of %s.", s, strings.Join(herald.Statuses, ", "))
			}
			f.Status = s
		}
		if s := f.EventSubtype; s != "" {
			if _, ok := herald.Catalog.EntityOf(s); !ok {
				return herald.FieldErrorf("eventSubtype", "Event subtype %q is not in the event catalog.", s)
			}
		}
		var err error
		if d.Filter.From != "" {
			if f.From, err = parseUTC("from", "From", d.Filter.From); err != nil {
				return err
			}
		}
		if d.Filter.To != "" {
			if f.To, err = parseUTC("to", "To", d.Filter.To); err != nil {
				return err
			}
		}
		if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
			return herald.FieldErrorf("to", "To must be after From.")
		}
		return nil
	}()
	var next string
	if err == nil {
		d.Deliveries, next, err = u.store.ListDeliveries(r.Context(), f)
	}
	if err != nil {
		status, err := formError(err, &d.Field, &d.Error)
		if err != nil {
			return err
		}
		return u.render(w, r, status, "deliveries", "Delivery log", d)
	}
	if next != "" {
		v := url.Values{}
		for k, val := range map[string]string{"webhook": d.Filter.Webhook, "status": d.Filter.Status,
			"eventSubtype": d.Filter.EventSubtype, "from": d.Filter.From, "to": d.Filter.To, "cursor": next} {
			if val != "" {
				v.Set(k, val)
			}
		}
		d.NextURL = instPath(r) + "/deliveries?" + v.Encode()
	}
	return u.render(w, r, http.StatusOK, "deliveries", "Delivery log", d)
}

// requestHeader is one header of an attempt's request, as Herald sends it.
type requestHeader struct {
	Name, Value string
	Note        string
}

type attemptView struct {
	herald.Attempt
	Headers []requestHeader
	Success bool
}

type deliveryData struct {
	Delivery *herald.Delivery
	Event    *herald.Event
	Webhook  *herald.Webhook // nil when it was removed since
	Attempts []attemptView
	Waiting  bool
	Notice   string
	Error    string
}

// requestHeaders rebuilds the headers of an attempt's request: Herald's
// own, exactly as sent, and the webhook's configured headers as they are
// set now. Configured values are shown only to roles that may read the
// webhook's settings, and secret ones masked even then.
func requestHeaders(a herald.Attempt, eventID string, wh *herald.Webhook, showValues bool) []requestHeader {
	out := []requestHeader{
		{Name: "Content-Type", Value: "application/json"},
		{Name: "User-Agent", Value: "Herald/" + herald.Version},
		{Name: "webhook-id", Value: eventID, Note: "the event id, the same on every attempt"},
		{Name: "webhook-timestamp", Value: fmt.Sprint(a.StartedAt.Unix()), Note: "when this attempt started"},
		{Name: "webhook-signature", Value: "v1,…", Note: "HMAC-SHA256 with each secret live at the time; not kept"},
	}
	if wh != nil {
		for _, h := range wh.Headers {
			v := h.Value
			if !showValues {
				v = "•••"
			}
			out = append(out, requestHeader{Name: h.Name, Value: v, Note: "configured on the webhook (as set now)"})
		}
	}
	return out
}

func (u *ui) deliveryPage(w http.ResponseWriter, r *http.Request, status int, d deliveryData) error {
	tenant, instance := r.PathValue("tenant"), r.PathValue("instance")
	dl, err := u.store.GetDelivery(r.Context(), tenant, instance, r.PathValue("id"))
	if err != nil {
		return err
	}
	d.Delivery = dl
	if d.Event, err = u.store.GetEvent(r.Context(), tenant, instance, dl.EventID); err != nil {
		return err
	}
	if wh, err := u.store.GetWebhook(r.Context(), tenant, instance, dl.Webhook); err == nil {
		d.Webhook = wh.Masked()
	} else if herald.ErrorCode(err) != herald.ENOTFOUND {
		return err
	}
	show := access.Can(state(r).principal, access.ReadConfig, tenant)
	for _, a := range dl.Attempts {
		d.Attempts = append(d.Attempts, attemptView{Attempt: a, Headers: requestHeaders(a, dl.EventID, d.Webhook, show),
			Success: a.Delivered()})
	}
	d.Waiting = dl.NextAttemptAt != nil && (dl.Status == herald.StatusPending || dl.Status == herald.StatusRetrying)
	return u.render(w, r, status, "delivery", "Delivery "+dl.ID, d)
}

func (u *ui) delivery(w http.ResponseWriter, r *http.Request) error {
	return u.deliveryPage(w, r, http.StatusOK, deliveryData{})
}

func (u *ui) resend(w http.ResponseWriter, r *http.Request) error {
	_, err := u.store.ResendDelivery(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("id"))
	if err != nil {
		var field, msg string
		status, err := formError(err, &field, &msg)
		if err != nil {
			return err
		}
		return u.deliveryPage(w, r, status, deliveryData{Error: msg})
	}
	http.Redirect(w, r, instPath(r)+"/deliveries/"+r.PathValue("id")+"?done=resent", http.StatusSeeOther)
	return nil
}

type eventView struct {
	Event      *herald.Event
	Deliveries []*herald.Delivery
}

type eventsData struct {
	Query  string
	Events []eventView
	Field  string
	Error  string
}

// events finds events by event id or by the producer's source id, with
// the deliveries made from each.
func (u *ui) events(w http.ResponseWriter, r *http.Request) error {
	tenant, instance := r.PathValue("tenant"), r.PathValue("instance")
	d := eventsData{Query: strings.TrimSpace(r.URL.Query().Get("q"))}
	if _, err := u.store.GetInstance(r.Context(), tenant, instance); err != nil {
		return err
	}
	if d.Query == "" {
		return u.render(w, r, http.StatusOK, "events", "Events", d)
	}
	seen := map[string]bool{}
	var found []*herald.Event
	for _, eq := range []herald.EventQuery{{ID: d.Query}, {SourceID: d.Query}} {
		eq.Tenant, eq.Instance, eq.Limit = tenant, instance, 20
		list, err := u.store.FindEvents(r.Context(), eq)
		if err != nil {
			return err
		}
		for _, e := range list {
			if !seen[e.ID] {
				seen[e.ID] = true
				found = append(found, e)
			}
		}
	}
	for _, e := range found {
		ds, _, err := u.store.ListDeliveries(r.Context(), herald.DeliveryFilter{Tenant: tenant, Instance: instance, EventID: e.ID, Limit: 100})
		if err != nil {
			return err
		}
		d.Events = append(d.Events, eventView{Event: e, Deliveries: ds})
	}
	return u.render(w, r, http.StatusOK, "events", "Events", d)
}
