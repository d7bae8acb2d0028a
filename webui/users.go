package webui

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"rsc.io/qr"

	"github.com/heraldhooks/herald"
)

// usersData is the people page of a tenant: the list, the invite form,
// and the outcome of what was just done.
type usersData struct {
	Users []*herald.User
	Roles []herald.Role
	// Email, DisplayName, Role and Field are the invite form as posted
	// when it was refused, and the field at fault.
	Email, DisplayName, Role, Field string
	Error                           string
	Notice                          string
	// SetupLink is a new setup link, shown on this answer only, for
	// SetupFor.
	SetupLink, SetupFor, SetupExpires string
	Self                              string // the signed-in person's email
}

func (u *ui) usersPage(w http.ResponseWriter, r *http.Request, status int, d usersData) error {
	list, err := u.store.ListUsers(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	d.Users, d.Roles = list, tenantRoles
	if d.Role == "" {
		d.Role = string(herald.RoleViewer)
	}
	if p := state(r).principal; p != nil {
		d.Self = p.Email
	}
	return u.render(w, r, status, "users", "People", d)
}

func (u *ui) users(w http.ResponseWriter, r *http.Request) error {
	return u.usersPage(w, r, http.StatusOK, usersData{})
}

// setupURL is the full setup link of a token: under Config.PublicURL, or
// the scheme and host the admin reached this page at.
func (u *ui) setupURL(r *http.Request, token string) string {
	base := u.publicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/ui/setup/" + token
}

// userInvite creates a person and shows their setup link on the page it
// answers with: a POST, so the link never sits in a URL of this page.
func (u *ui) userInvite(w http.ResponseWriter, r *http.Request) error {
	d := usersData{Email: strings.TrimSpace(r.PostForm.Get("email")), DisplayName: strings.TrimSpace(r.PostForm.Get("displayName")),
		Role: r.PostForm.Get("role")}
	inv, err := u.access.InviteUser(r.Context(), r.PathValue("tenant"), d.Email, d.DisplayName, herald.Role(d.Role))
	if err != nil {
		status, err := formError(err, &d.Field, &d.Error)
		if err != nil {
			return err
		}
		if d.Field == "name" { // a conflict: the email is taken
			d.Field = "email"
		}
		return u.usersPage(w, r, status, d)
	}
	noteAudit(r, "user "+inv.User.Email, map[string]any{"role": inv.User.Role, "displayName": inv.User.DisplayName})
	return u.usersPage(w, r, http.StatusOK, usersData{SetupLink: u.setupURL(r, inv.Token), SetupFor: inv.User.Email,
		SetupExpires: when(inv.ExpiresAt),
		Notice:       inv.User.Email + " invited. Send them the setup link below: it is shown this once."})
}

// userSetupLink gives a person who has not finished setting up a new link.
func (u *ui) userSetupLink(w http.ResponseWriter, r *http.Request) error {
	inv, err := u.access.NewSetupLink(r.Context(), r.PathValue("tenant"), r.PathValue("email"))
	if err != nil {
		return err
	}
	return u.usersPage(w, r, http.StatusOK, usersData{SetupLink: u.setupURL(r, inv.Token), SetupFor: inv.User.Email,
		SetupExpires: when(inv.ExpiresAt), Notice: "New setup link for " + inv.User.Email + "; the earlier one no longer works."})
}

func (u *ui) userRole(w http.ResponseWriter, r *http.Request) error {
	tenant, email := r.PathValue("tenant"), r.PathValue("email")
	before, err := u.store.GetUser(r.Context(), tenant, email)
	if err != nil {
		return err
	}
	after, err := u.access.SetUserRole(r.Context(), tenant, email, herald.Role(r.PostForm.Get("role")))
	if err != nil {
		return err
	}
	diff := map[string]any{}
	herald.AddChange(diff, "role", before.Role, after.Role)
	noteAudit(r, "", diff)
	http.Redirect(w, r, tenantPath(r)+"/users?done=user-role", http.StatusSeeOther)
	return nil
}

func (u *ui) userSignOutEverywhere(w http.ResponseWriter, r *http.Request) error {
	n, err := u.access.SignOutEverywhere(r.Context(), r.PathValue("tenant"), r.PathValue("email"))
	if err != nil {
		return err
	}
	noteAudit(r, "", map[string]any{"sessions": n})
	p := state(r).principal
	if p != nil && p.Email == strings.ToLower(r.PathValue("email")) {
		http.Redirect(w, r, "/ui/signin?out=1", http.StatusSeeOther) // that was this browser too
		return nil
	}
	http.Redirect(w, r, tenantPath(r)+"/users?done=user-signed-out", http.StatusSeeOther)
	return nil
}

func (u *ui) userDelete(w http.ResponseWriter, r *http.Request) error {
	if err := u.access.DeleteUser(r.Context(), r.PathValue("tenant"), r.PathValue("email")); err != nil {
		return err
	}
	http.Redirect(w, r, tenantPath(r)+"/users?done=user-deleted", http.StatusSeeOther)
	return nil
}

// setupData is the setup page of an invited person: choose a password,
// then enrol TOTP, then see the recovery codes.
type setupData struct {
	Token string
	User  *herald.User
	// Step is "password", "totp" or "done".
	Step  string
	Error string
	// TOTP enrolment: the secret, its otpauth:// URI and its QR code.
	Secret, URI string
	QR          template.HTML
	// RecoveryCodes are shown once, at the end.
	RecoveryCodes []string
}

// setupPage shows the step the person is at; a link that does not work
// says why.
func (u *ui) setupPage(w http.ResponseWriter, r *http.Request) error {
	if err := u.ensureCSRF(w, r); err != nil {
		return err
	}
	token := r.PathValue("token")
	usr, err := u.access.SetupUser(r.Context(), token)
	if err != nil {
		return err
	}
	d := setupData{Token: token, User: usr, Step: "password"}
	if usr.PasswordHash != "" && usr.TOTPSecret != "" && !usr.TOTPEnabled {
		if err := u.fillTOTP(&d); err != nil {
			return err
		}
	}
	return u.render(w, r, http.StatusOK, "setup", "Set up your account", d)
}

// ensureCSRF starts a pre-session for a visitor who has none, so the
// page's forms carry a CSRF token.
func (u *ui) ensureCSRF(w http.ResponseWriter, r *http.Request) error {
	if state(r).csrf != "" {
		return nil
	}
	return u.startPreSession(w, r)
}

func (u *ui) fillTOTP(d *setupData) error {
	d.Step, d.Secret, d.URI = "totp", d.User.TOTPSecret, u.access.TOTPURI(d.User)
	svg, err := qrSVG(d.URI)
	if err != nil {
		return err
	}
	d.QR = svg
	return nil
}

func (u *ui) setupPassword(w http.ResponseWriter, r *http.Request) error {
	token := r.PathValue("token")
	pw := r.PostForm.Get("password")
	if pw != r.PostForm.Get("confirm") {
		usr, err := u.access.SetupUser(r.Context(), token)
		if err != nil {
			return err
		}
		return u.render(w, r, http.StatusBadRequest, "setup", "Set up your account", setupData{Token: token, User: usr, Step: "password",
			Error: "The two passwords differ; type the same password twice."})
	}
	usr, err := u.access.SetPassword(r.Context(), token, pw)
	if herald.ErrorCode(err) == herald.EINVALID {
		usr, err2 := u.access.SetupUser(r.Context(), token)
		if err2 != nil {
			return err2
		}
		return u.render(w, r, http.StatusBadRequest, "setup", "Set up your account", setupData{Token: token, User: usr, Step: "password",
			Error: herald.ErrorMessage(err)})
	}
	if err != nil {
		return err
	}
	d := setupData{Token: token, User: usr}
	if err := u.fillTOTP(&d); err != nil {
		return err
	}
	return u.render(w, r, http.StatusOK, "setup", "Set up your account", d)
}

func (u *ui) setupTOTP(w http.ResponseWriter, r *http.Request) error {
	token := r.PathValue("token")
	codes, usr, err := u.access.ConfirmTOTP(r.Context(), token, r.PostForm.Get("code"), r.RemoteAddr)
	if herald.ErrorCode(err) == herald.EINVALID {
		usr, err2 := u.access.SetupUser(r.Context(), token)
		if err2 != nil {
			return err2
		}
		d := setupData{Token: token, User: usr, Error: herald.ErrorMessage(err)}
		if err := u.fillTOTP(&d); err != nil {
			return err
		}
		return u.render(w, r, http.StatusBadRequest, "setup", "Set up your account", d)
	}
	if err != nil {
		return err
	}
	return u.render(w, r, http.StatusOK, "setup", "Your recovery codes", setupData{User: usr, Step: "done", RecoveryCodes: codes})
}

// qrSVG renders text as a QR code in inline SVG: one path of dark
// modules, with the quiet zone of four modules the standard asks for.
func qrSVG(text string) (template.HTML, error) {
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return "", fmt.Errorf("qr code: %w", err)
	}
	const quiet = 4
	n := c.Size + 2*quiet
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges" role="img" aria-label="QR code of the authenticator link" id="totp-qr">`, n, n, n*5, n*5)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y := range c.Size {
		for x := range c.Size {
			if c.Black(x, y) {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x+quiet, y+quiet)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()), nil // made here of numbers only
}
