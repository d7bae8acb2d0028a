package webui

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
)

// webhookReplay starts a replay of the webhook's window from the replay
// form (times in UTC; an empty until is now) and shows the webhook page
// with its count; the page lists the replay's progress.
func (u *ui) webhookReplay(w http.ResponseWriter, r *http.Request) error {
	from, to := r.PostForm.Get("since"), r.PostForm.Get("until")
	d := webhookData{ReplayFrom: from, ReplayUntil: to}
	var since, until time.Time
	var err error
	if strings.TrimSpace(from) == "" {
		err = herald.FieldErrorf("since", "Give the time from which to replay events (UTC).")
	} else {
		since, err = parseUTC("since", "Since", from)
	}
	if err == nil && strings.TrimSpace(to) != "" {
		until, err = parseUTC("until", "Until", to)
	}
	if err == nil {
		now := u.now()
		if until.After(now) {
			until = now // the form's default is a minute ahead: "up to now"
		}
		since, until, err = herald.ValidateReplayWindow(since, until, now, u.retention)
	}
	if err == nil {
		by := ""
		if p := state(r).principal; p != nil {
			kind, name := p.Actor()
			by = kind + " " + name
		}
		var rp *herald.Replay
		rp, err = u.store.CreateReplay(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), since, until, by)
		if err == nil {
			noteAudit(r, "", map[string]any{"replay": rp.ID, "since": rp.Since.Format(time.RFC3339Nano),
				"until": rp.Until.Format(time.RFC3339Nano), "events": rp.Events})
			d.Notice = "Replaying " + strconv.Itoa(rp.Events) + " events made from " + when(rp.Since) + " to " + when(rp.Until) +
				": those without a delivered or pending delivery to this webhook get one, a few hundred at a time."
			return u.webhookPage(w, r, http.StatusOK, d)
		}
	}
	var field, msg string
	status, err := formError(err, &field, &msg)
	if err != nil {
		return err
	}
	d.ActionError = msg
	return u.webhookPage(w, r, status, d)
}
