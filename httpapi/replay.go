package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhooks/herald"
)

// replayWebhook starts a replay of the webhook's window: 202 with the
// replay, whose events count the retained events its triggers select;
// batches then create the deliveries that are missing (GET the replay for
// its progress).
func (s *server) replayWebhook(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Since *string `json:"since"`
		Until *string `json:"until"`
	}
	if err := decodeJSON(w, r, &req, bodyRequired); err != nil {
		return err
	}
	var since, until time.Time
	var err error
	if req.Since != nil && *req.Since != "" {
		if since, err = parseTime("since", *req.Since); err != nil {
			return err
		}
	}
	if req.Until != nil && *req.Until != "" {
		if until, err = parseTime("until", *req.Until); err != nil {
			return err
		}
	}
	if since, until, err = herald.ValidateReplayWindow(since, until, s.now(), s.retention); err != nil {
		return err
	}
	by := ""
	if p := principal(r); p != nil {
		kind, name := p.Actor()
		by = kind + " " + name
	}
	rp, err := s.store.CreateReplay(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), since, until, by)
	if err != nil {
		return err
	}
	noteAudit(r, "", map[string]any{"replay": rp.ID, "since": rp.Since.Format(time.RFC3339Nano),
		"until": rp.Until.Format(time.RFC3339Nano), "events": rp.Events})
	return writeJSON(w, http.StatusAccepted, map[string]*herald.Replay{"replay": rp})
}

// getReplay answers one replay of the webhook, with its progress.
func (s *server) getReplay(w http.ResponseWriter, r *http.Request) error {
	rp, err := s.store.GetReplay(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]*herald.Replay{"replay": rp})
}

// listReplays answers the webhook's latest replays, newest first
// (?limit=, at most 100).
func (s *server) listReplays(w http.ResponseWriter, r *http.Request) error {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return herald.FieldErrorf("limit", "limit %q is not a number from 1 to 100.", v)
		}
		limit = n
	}
	rps, err := s.store.ListReplays(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string][]*herald.Replay{"replays": rps})
}
