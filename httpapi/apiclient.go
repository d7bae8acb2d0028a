package httpapi

import (
	"net/http"
	"time"

	"github.com/heraldhooks/herald"
)

// clientWithSecret is the answer to creating an API client or rotating its
// secret: the only time the secret is shown.
type clientWithSecret struct {
	*herald.APIClient
	Secret string `json:"secret"`
}

func (s *server) createAPIClient(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string      `json:"name"`
		Role herald.Role `json:"role"`
	}
	if err := decodeJSON(w, r, &req, bodyRequired); err != nil {
		return err
	}
	if req.Role == herald.RolePlatformAdmin && principal(r).Role != herald.RolePlatformAdmin {
		return herald.Errorf(herald.EFORBIDDEN, "Only a platform-admin may create platform-admin clients, and not under a tenant.")
	}
	c, secret, err := s.access.CreateClient(r.Context(), r.PathValue("tenant"), req.Name, req.Role)
	if err != nil {
		return err
	}
	noteAudit(r, "api-client "+c.Name, map[string]any{"role": c.Role})
	w.Header().Set("Location", "/v1/tenants/"+c.Tenant+"/api-clients/"+c.Name)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, clientWithSecret{c, secret})
}

func (s *server) listAPIClients(w http.ResponseWriter, r *http.Request) error {
	list, err := s.store.ListAPIClients(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"apiClients": nonNil(list)})
}

func (s *server) getAPIClient(w http.ResponseWriter, r *http.Request) error {
	c, err := s.store.GetAPIClient(r.Context(), r.PathValue("tenant"), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// rotateAPIClient gives the client a new secret; the old one, and the
// tokens issued for it, keep working for graceSeconds (default a day, at
// most a week, 0 to stop them at once).
func (s *server) rotateAPIClient(w http.ResponseWriter, r *http.Request) error {
	grace, err := decodeGrace(w, r)
	if err != nil {
		return err
	}
	c, secret, err := s.access.RotateClient(r.Context(), r.PathValue("tenant"), r.PathValue("name"), time.Duration(grace)*time.Second)
	if err != nil {
		return err
	}
	noteAudit(r, "", map[string]any{"graceSeconds": grace})
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, clientWithSecret{c, secret})
}

func (s *server) disableAPIClient(w http.ResponseWriter, r *http.Request) error {
	return s.setAPIClientDisabled(w, r, true)
}

func (s *server) enableAPIClient(w http.ResponseWriter, r *http.Request) error {
	return s.setAPIClientDisabled(w, r, false)
}

func (s *server) setAPIClientDisabled(w http.ResponseWriter, r *http.Request, disabled bool) error {
	var req struct{}
	if err := decodeJSON(w, r, &req, bodyOptional); err != nil {
		return err
	}
	c, err := s.access.SetClientDisabled(r.Context(), r.PathValue("tenant"), r.PathValue("name"), disabled)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *server) deleteAPIClient(w http.ResponseWriter, r *http.Request) error {
	if err := s.access.DeleteClient(r.Context(), r.PathValue("tenant"), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
