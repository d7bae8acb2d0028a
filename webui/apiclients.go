package webui

import (
	"net/http"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
)

// apiClientsData is the API clients page of a tenant: the list, the form
// to create one, and the outcome of what was just done.
type apiClientsData struct {
	Clients []*herald.APIClient
	Roles   []herald.Role
	// Name, Role and Field are the create form as posted when it was
	// refused, and the field at fault.
	Name, Role, Field string
	Error             string // why the create form was refused
	ActionError       string // why a row's action was refused
	Notice            string
	// Secret is a new secret, shown on this answer only: of the client
	// named SecretOf.
	Secret, SecretOf string
	Self             string // the signed-in client, if it is of this tenant
}

// tenantRoles are the roles a tenant's client may have.
var tenantRoles = []herald.Role{herald.RoleAdmin, herald.RoleDesigner, herald.RoleProducer, herald.RoleViewer}

// apiClientsPage renders the page with d filled in from the store.
func (u *ui) apiClientsPage(w http.ResponseWriter, r *http.Request, status int, d apiClientsData) error {
	tenant := r.PathValue("tenant")
	list, err := u.store.ListAPIClients(r.Context(), tenant)
	if err != nil {
		return err
	}
	d.Clients, d.Roles = list, tenantRoles
	if d.Role == "" {
		d.Role = string(herald.RoleViewer) // the least a new client can do
	}
	if p := state(r).principal; p != nil && p.Tenant == tenant {
		d.Self = p.Client
	}
	return u.render(w, r, status, "apiclients", "API clients", d)
}

func (u *ui) apiClients(w http.ResponseWriter, r *http.Request) error {
	return u.apiClientsPage(w, r, http.StatusOK, apiClientsData{})
}

// apiClientCreate creates a client and shows its secret on the page it
// answers with: a POST, so the secret never sits in a URL.
func (u *ui) apiClientCreate(w http.ResponseWriter, r *http.Request) error {
	name, role := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("role")
	c, secret, err := u.access.CreateClient(r.Context(), r.PathValue("tenant"), name, herald.Role(role))
	if err != nil {
		d := apiClientsData{Name: name, Role: role}
		status, err := formError(err, &d.Field, &d.Error)
		if err != nil {
			return err
		}
		return u.apiClientsPage(w, r, status, d)
	}
	noteAudit(r, "api-client "+c.Name, map[string]any{"role": c.Role})
	return u.apiClientsPage(w, r, http.StatusOK, apiClientsData{Secret: secret, SecretOf: c.Name,
		Notice: "API client " + c.Name + " created. Copy its secret now: it is shown this once."})
}

// apiClientRotate gives a client a new secret, shown on this answer only.
func (u *ui) apiClientRotate(w http.ResponseWriter, r *http.Request) error {
	grace, ok := graceChoices[r.PostForm.Get("grace")]
	if !ok {
		return u.apiClientsPage(w, r, http.StatusBadRequest, apiClientsData{ActionError: "Choose how long the old secret keeps working: no time, an hour, a day or a week."})
	}
	c, secret, err := u.access.RotateClient(r.Context(), r.PathValue("tenant"), r.PathValue("name"), grace)
	if err != nil {
		return err
	}
	noteAudit(r, "", map[string]any{"graceSeconds": int(grace / time.Second)})
	d := apiClientsData{Secret: secret, SecretOf: c.Name}
	if grace == 0 {
		d.Notice = "Secret of " + c.Name + " rotated. The old secret, and the tokens issued for it, stopped working at once."
	} else {
		d.Notice = "Secret of " + c.Name + " rotated. The old secret, and the tokens issued for it, keep working until " + when(u.now().Add(grace)) + "."
	}
	return u.apiClientsPage(w, r, http.StatusOK, d)
}

func (u *ui) apiClientDisable(w http.ResponseWriter, r *http.Request) error {
	return u.apiClientSetDisabled(w, r, true)
}

func (u *ui) apiClientEnable(w http.ResponseWriter, r *http.Request) error {
	return u.apiClientSetDisabled(w, r, false)
}

func (u *ui) apiClientSetDisabled(w http.ResponseWriter, r *http.Request, disabled bool) error {
	if _, err := u.access.SetClientDisabled(r.Context(), r.PathValue("tenant"), r.PathValue("name"), disabled); err != nil {
		return err
	}
	done := "client-enabled"
	if disabled {
		done = "client-disabled"
	}
	http.Redirect(w, r, tenantPath(r)+"/api-clients?done="+done, http.StatusSeeOther)
	return nil
}

// apiClientDeleteConfirm asks before deleting: a deletion cannot be undone
// and ends the client's tokens.
func (u *ui) apiClientDeleteConfirm(w http.ResponseWriter, r *http.Request) error {
	c, err := u.store.GetAPIClient(r.Context(), r.PathValue("tenant"), r.PathValue("name"))
	if err != nil {
		return err
	}
	return u.render(w, r, http.StatusOK, "apiclient_delete", "Delete "+c.Name, c)
}

func (u *ui) apiClientDelete(w http.ResponseWriter, r *http.Request) error {
	if err := u.access.DeleteClient(r.Context(), r.PathValue("tenant"), r.PathValue("name")); err != nil {
		return err
	}
	http.Redirect(w, r, tenantPath(r)+"/api-clients?done=client-deleted", http.StatusSeeOther)
	return nil
}
