package webui

import (
	"net/http"
	"strings"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
)

type homeData struct {
	Groups []switchGroup
	// Platform is set on a platform admin's home: it links the audit
	// trail of every tenant.
	Platform bool
}

// home sends a visitor to sign in, a tenant's user to their tenant, and
// shows a platform admin every tenant.
func (u *ui) home(w http.ResponseWriter, r *http.Request) error {
	p := state(r).principal
	if p == nil {
		http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
		return nil
	}
	if p.Role != herald.RolePlatformAdmin {
		http.Redirect(w, r, "/ui/t/"+p.Tenant+"/", http.StatusSeeOther)
		return nil
	}
	return u.render(w, r, http.StatusOK, "home", "Tenants", homeData{Groups: u.switchGroups(r.Context(), p), Platform: true})
}

// tenantHome lists a tenant's designer and instances.
func (u *ui) tenantHome(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	insts, err := u.store.ListInstances(r.Context(), tenant)
	if err != nil {
		return err
	}
	g := switchGroup{Tenant: tenant}
	for _, in := range insts {
		g.Instances = append(g.Instances, in.Name)
	}
	return u.render(w, r, http.StatusOK, "home", tenant, homeData{Groups: []switchGroup{g}})
}

// instanceHome opens an instance on its webhooks, or on its delivery log
// for roles that may not read webhook settings.
func (u *ui) instanceHome(w http.ResponseWriter, r *http.Request) error {
	base := instPath(r)
	if access.Can(state(r).principal, access.ReadConfig, r.PathValue("tenant")) {
		http.Redirect(w, r, base+"/webhooks", http.StatusSeeOther)
	} else {
		http.Redirect(w, r, base+"/deliveries", http.StatusSeeOther)
	}
	return nil
}

// switchTo is the tenant and instance switcher's target: "acme" opens the
// tenant, "acme/sandbox" the instance, in the same section when it can.
func (u *ui) switchTo(w http.ResponseWriter, r *http.Request) error {
	to := r.URL.Query().Get("to")
	tenant, instance, _ := strings.Cut(to, "/")
	if err := herald.ValidateName("tenant", tenant); err != nil {
		return err
	}
	if instance == "" {
		http.Redirect(w, r, "/ui/t/"+tenant+"/designer", http.StatusSeeOther)
		return nil
	}
	if err := herald.ValidateName("instance", instance); err != nil {
		return err
	}
	section := r.URL.Query().Get("section")
	switch section {
	case "webhooks", "deliveries", "events":
	default:
		section = ""
	}
	http.Redirect(w, r, "/ui/t/"+tenant+"/i/"+instance+"/"+section, http.StatusSeeOther)
	return nil
}

// instPath returns the UI path of the request's instance.
func instPath(r *http.Request) string {
	return "/ui/t/" + r.PathValue("tenant") + "/i/" + r.PathValue("instance")
}

// tenantPath returns the UI path of the request's tenant.
func tenantPath(r *http.Request) string {
	return "/ui/t/" + r.PathValue("tenant")
}
