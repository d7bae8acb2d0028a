package httpapi

import (
	"net/http"
	"time"

	"github.com/heraldhooks/herald"
)

// userWithSetup is the answer to inviting a person: the only time the
// setup link is shown. SetupLink is a path under the UI; prefix it with
// where people reach Herald.
type userWithSetup struct {
	*herald.User
	SetupLink      string    `json:"setupLink"`
	SetupExpiresAt time.Time `json:"setupExpiresAt"`
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Email       string      `json:"email"`
		DisplayName string      `json:"displayName"`
		Role        herald.Role `json:"role"`
	}
	if err := decodeJSON(w, r, &req, bodyRequired); err != nil {
		return err
	}
	inv, err := s.access.InviteUser(r.Context(), r.PathValue("tenant"), req.Email, req.DisplayName, req.Role)
	if err != nil {
		return err
	}
	noteAudit(r, "user "+inv.User.Email, map[string]any{"role": inv.User.Role, "displayName": inv.User.DisplayName})
	w.Header().Set("Location", "/v1/tenants/"+inv.User.Tenant+"/users/"+inv.User.Email)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, userWithSetup{inv.User, "/ui/setup/" + inv.Token, inv.ExpiresAt})
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request) error {
	list, err := s.store.ListUsers(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"users": nonNil(list)})
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.store.GetUser(r.Context(), r.PathValue("tenant"), r.PathValue("email"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

// updateUser changes a person's role: {"role":"designer"}.
func (s *server) updateUser(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Role *herald.Role `json:"role"`
	}
	if err := decodeJSON(w, r, &req, bodyRequired); err != nil {
		return err
	}
	tenant, email := r.PathValue("tenant"), r.PathValue("email")
	before, err := s.store.GetUser(r.Context(), tenant, email)
	if err != nil {
		return err
	}
	if req.Role == nil {
		return writeJSON(w, http.StatusOK, before)
	}
	after, err := s.access.SetUserRole(r.Context(), tenant, email, *req.Role)
	if err != nil {
		return err
	}
	diff := map[string]any{}
	herald.AddChange(diff, "role", before.Role, after.Role)
	noteAudit(r, "", diff)
	return writeJSON(w, http.StatusOK, after)
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := s.access.DeleteUser(r.Context(), r.PathValue("tenant"), r.PathValue("email")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// signOutEverywhere ends every web UI session of a person.
func (s *server) signOutEverywhere(w http.ResponseWriter, r *http.Request) error {
	n, err := s.access.SignOutEverywhere(r.Context(), r.PathValue("tenant"), r.PathValue("email"))
	if err != nil {
		return err
	}
	noteAudit(r, "", map[string]any{"sessions": n})
	return writeJSON(w, http.StatusOK, map[string]any{"sessionsEnded": n})
}
