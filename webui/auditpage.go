package webui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
)

// auditData is the audit trail page: a tenant's entries (admins), or
// every entry (platform admins), newest first, with the API's filters.
type auditData struct {
	Tenant                  string
	Actor, Action, From, To string
	Entries                 []auditRow
	Next                    string // the query of the next page; "" on the last
	Error                   string
}

// auditRow is an entry as the page shows it.
type auditRow struct {
	*herald.AuditEntry
	Changes []auditChange
	Details string // a diff that is not field changes, as JSON
}

type auditChange struct {
	Field    string
	Old, New string
	Both     bool // old and new, rather than a detail
}

// auditPage lists audit entries: /ui/t/{tenant}/audit for a tenant's,
// /ui/audit for everyone's.
func (u *ui) auditPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := auditData{Tenant: r.PathValue("tenant"), Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		From: q.Get("from"), To: q.Get("to")}
	f := herald.AuditFilter{Tenant: d.Tenant, Actor: d.Actor, Action: d.Action, Cursor: q.Get("cursor"), Limit: 50}
	if f.Tenant != "" {
		if _, err := u.store.GetTenant(r.Context(), f.Tenant); err != nil {
			return err
		}
	}
	status := http.StatusOK
	for _, p := range []struct {
		name, v string
		t       *time.Time
	}{{"from", d.From, &f.From}, {"to", d.To, &f.To}} {
		if p.v == "" {
			continue
		}
		t, err := parseWhen(p.v)
		if err != nil {
			d.Error, status = fmt.Sprintf("%s %q is not a time: use 2026-11-26T17:00 or RFC 3339.", p.name, p.v), http.StatusBadRequest
			return u.render(w, r, status, "audit", "Audit trail", d)
		}
		*p.t = t
	}
	entries, next, err := u.store.ListAudit(r.Context(), f)
	if err != nil {
		if herald.ErrorCode(err) == herald.EINVALID {
			d.Error = herald.ErrorMessage(err)
			return u.render(w, r, http.StatusBadRequest, "audit", "Audit trail", d)
		}
		return err
	}
	for _, e := range entries {
		d.Entries = append(d.Entries, auditRowOf(e))
	}
	if next != "" {
		nq := q
		nq.Set("cursor", next)
		d.Next = nq.Encode()
	}
	return u.render(w, r, status, "audit", "Audit trail", d)
}

// parseWhen reads RFC 3339 or the value of a datetime-local input, in UTC.
func parseWhen(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time")
}

// auditRowOf splits an entry's diff into field changes (old -> new) and
// details.
func auditRowOf(e *herald.AuditEntry) auditRow {
	row := auditRow{AuditEntry: e}
	if len(e.Diff) == 0 {
		return row
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(e.Diff, &m); err != nil {
		row.Details = string(e.Diff)
		return row
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var ch struct {
			Old *json.RawMessage `json:"old"`
			New *json.RawMessage `json:"new"`
		}
		if err := json.Unmarshal(m[k], &ch); err == nil && ch.Old != nil && ch.New != nil {
			row.Changes = append(row.Changes, auditChange{Field: k, Old: plainJSON(*ch.Old), New: plainJSON(*ch.New), Both: true})
			continue
		}
		row.Changes = append(row.Changes, auditChange{Field: k, New: plainJSON(m[k])})
	}
	return row
}

// plainJSON shows a JSON string without its quotes, anything else as JSON.
func plainJSON(b json.RawMessage) string {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s == "" {
			return "(none)"
		}
		return s
	}
	return string(b)
}
