package httpapi

import (
	"net/http"

	"github.com/heraldhooks/herald"
)

// nameRequest is the body of the create calls that take only a name.
type nameRequest struct {
	Name string `json:"name"`
}

func (s *server) createTenant(w http.ResponseWriter, r *http.Request) error {
	var req nameRequest
	if err := decodeJSON(w, r, &req, bodyRequired); err != nil {
		return err
	}
	if err := herald.ValidateName("name", req.Name); err != nil {
		return err
	}
	t, err := s.store.CreateTenant(r.Context(), req.Name)
	if err != nil {
		return err
	}
	noteAudit(r, "tenant "+t.Name, nil)
	w.Header().Set("Location", "/v1/tenants/"+t.Name)
	return writeJSON(w, http.StatusCreated, t)
}

// listTenants returns every tenant to a platform admin, and its own tenant
// to anyone else.
func (s *server) listTenants(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	var tenants []*herald.Tenant
	if p.Role == herald.RolePlatformAdmin {
		var err error
		if tenants, err = s.store.ListTenants(r.Context()); err != nil {
			return err
		}
	} else {
		t, err := s.store.GetTenant(r.Context(), p.Tenant)
		if err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
			return err
		}
		if t != nil {
			tenants = append(tenants, t)
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tenants": nonNil(tenants)})
}

func (s *server) getTenant(w http.ResponseWriter, r *http.Request) error {
	t, err := s.store.GetTenant(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *server) createInstance(w http.ResponseWriter, r *http.Request) error {
	var req nameRequest
	if err := decodeJSON(w, r, &req, bodyRequired); err != nil {
		return err
	}
	if err := herald.ValidateName("name", req.Name); err != nil {
		return err
	}
	in, err := s.store.CreateInstance(r.Context(), r.PathValue("tenant"), req.Name)
	if err != nil {
		return err
	}
	noteAudit(r, "instance "+in.Name, nil)
	w.Header().Set("Location", "/v1/tenants/"+in.Tenant+"/instances/"+in.Name)
	return writeJSON(w, http.StatusCreated, in)
}

func (s *server) listInstances(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	if _, err := s.store.GetTenant(r.Context(), tenant); err != nil {
		return err
	}
	list, err := s.store.ListInstances(r.Context(), tenant)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"instances": nonNil(list)})
}

func (s *server) getInstance(w http.ResponseWriter, r *http.Request) error {
	in, err := s.store.GetInstance(r.Context(), r.PathValue("tenant"), r.PathValue("instance"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
