package httpapi

import (
	"net/http"
	"strconv"

	"github.com/heraldhooks/herald"
)

// designerWebhookRequest is the body of POST .../designer/webhooks.
type designerWebhookRequest struct {
	Name     string           `json:"name"`
	Title    string           `json:"title"`
	Triggers []herald.Trigger `json:"triggers"`
}

func (s *server) createDesignerWebhook(w http.ResponseWriter, r *http.Request) error {
	var req designerWebhookRequest
	if err := decodeJSON(w, r, &req, bodyRequired); err != nil {
		return err
	}
	wh := &herald.DesignerWebhook{Name: req.Name, Title: req.Title, Triggers: req.Triggers}
	if err := wh.Validate(); err != nil {
		return err
	}
	tenant := r.PathValue("tenant")
	if err := s.store.CreateDesignerWebhook(r.Context(), tenant, wh); err != nil {
		return err
	}
	// Read it back for the timestamps the store set.
	got, err := s.store.GetDesignerWebhook(r.Context(), tenant, wh.Name)
	if err != nil {
		return err
	}
	noteAudit(r, "designer webhook "+got.Name, map[string]any{"title": got.Title, "triggers": got.Triggers})
	w.Header().Set("Location", "/v1/tenants/"+tenant+"/designer/webhooks/"+got.Name)
	return writeJSON(w, http.StatusCreated, got)
}

func (s *server) listDesignerWebhooks(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	if _, err := s.store.GetTenant(r.Context(), tenant); err != nil {
		return err
	}
	list, err := s.store.ListDesignerWebhooks(r.Context(), tenant)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"webhooks": nonNil(list)})
}

func (s *server) getDesignerWebhook(w http.ResponseWriter, r *http.Request) error {
	wh, err := s.store.GetDesignerWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wh)
}

func (s *server) updateDesignerWebhook(w http.ResponseWriter, r *http.Request) error {
	var upd herald.DesignerWebhookUpdate
	if err := decodeJSON(w, r, &upd, bodyRequired); err != nil {
		return err
	}
	before, err := s.store.GetDesignerWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("name"))
	if err != nil {
		return err
	}
	wh, err := s.store.UpdateDesignerWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("name"), upd)
	if err != nil {
		return err
	}
	diff := map[string]any{}
	herald.AddChange(diff, "title", before.Title, wh.Title)
	herald.AddChange(diff, "triggers", before.Triggers, wh.Triggers)
	noteAudit(r, "designer webhook "+wh.Name, diff)
	return writeJSON(w, http.StatusOK, wh)
}

func (s *server) deleteDesignerWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.DeleteDesignerWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) draft(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	if _, err := s.store.GetTenant(r.Context(), tenant); err != nil {
		return err
	}
	changes, err := s.store.Draft(r.Context(), tenant)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"changes": nonNil(changes)})
}

// publish snapshots the draft as a new version. The body is optional.
func (s *server) publish(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Comment string `json:"comment"`
	}
	if err := decodeJSON(w, r, &req, bodyOptional); err != nil {
		return err
	}
	if len(req.Comment) > 1000 {
		return herald.FieldErrorf("comment", "comment is %d characters long; the limit is 1000.", len(req.Comment))
	}
	v, err := s.store.Publish(r.Context(), r.PathValue("tenant"), req.Comment, principal(r).Client)
	if err != nil {
		return err
	}
	noteAudit(r, "designer version "+strconv.Itoa(v.Version), map[string]any{"comment": req.Comment})
	return writeJSON(w, http.StatusCreated, v)
}

func (s *server) versions(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	if _, err := s.store.GetTenant(r.Context(), tenant); err != nil {
		return err
	}
	list, err := s.store.ListVersions(r.Context(), tenant)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"versions": nonNil(list)})
}
