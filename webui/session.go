package webui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
	"github.com/heraldhooks/herald/audit"
)

// Cookies. The session cookie holds a person's session id (access.Gate
// keeps the session, hashed, in the database, so every node sees it and a
// sign-out ends it everywhere at once), or, when Config.APIClientSignIn is
// on, an API client's access token. The pre-session cookie is a random value that binds the
// sign-in form's CSRF token to this browser before there is a session.
const (
	sessionCookie = "herald_session"
	preCookie     = "herald_pre"
	csrfField     = "csrf"
	maxFormBytes  = 1 << 20
)

// errCSRF is the answer to a form without a valid CSRF token: it did not
// come from a page Herald served to this session.
var errCSRF = herald.Errorf(herald.EFORBIDDEN, "This form was refused: its CSRF token is missing or does not match your session (the page may be older than your sign-in). Go back, reload the page and submit it again.")

// reqState is what the endpoint wrapper learns about a request.
type reqState struct {
	principal *herald.Principal
	csrf      string // the token this session's forms carry
	ended     string // why the session in the cookie no longer works

	audit audit.Note // what the handler adds to its audit entry
}

type stateKey struct{}

func state(r *http.Request) *reqState {
	s, _ := r.Context().Value(stateKey{}).(*reqState)
	if s == nil {
		return &reqState{}
	}
	return s
}

// endpoint wraps a page with the session, the CSRF check of forms, the
// role check of the route's perm, and error rendering.
func (u *ui) endpoint(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &reqState{}
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		seed := ""
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
			var p *herald.Principal
			var err error
			switch {
			case access.IsSessionID(c.Value):
				p, err = u.access.Session(r.Context(), c.Value)
			case u.apiClientSignIn:
				p, err = u.access.Verify(r.Context(), c.Value)
			}
			if p != nil && err == nil {
				st.principal = p
				seed = "s." + c.Value
			} else if err != nil {
				st.ended = herald.ErrorMessage(err)
			}
		}
		if seed == "" {
			if c, err := r.Cookie(preCookie); err == nil && len(c.Value) >= 32 {
				seed = "p." + c.Value
			}
		}
		if seed != "" {
			st.csrf = u.access.MAC("webui-csrf." + seed)
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				u.renderError(w, r, herald.Errorf(herald.EINVALID, "The form could not be read: %v.", err))
				return
			}
			if got := r.PostForm.Get(csrfField); st.csrf == "" || !hmac.Equal([]byte(got), []byte(st.csrf)) {
				u.renderError(w, r, errCSRF)
				return
			}
		}
		if rt.perm != access.Public {
			if st.principal == nil {
				u.toSignin(w, r)
				return
			}
			if err := access.Allowed(st.principal, rt.perm, r.PathValue("tenant")); err != nil {
				u.renderError(w, r, err)
				return
			}
		}
		if r.Method == http.MethodPost && r.PathValue("instance") == herald.OperationsInstance {
			// The tenant's reserved operations instance is changed only
			// through the API's /operations-webhook, as the API's
			// instance routes refuse it too; its pages stay readable.
			u.renderError(w, r, herald.Errorf(herald.ENOTFOUND, "Instance %q is reserved for the operations webhook; set it through the API (PUT /v1/tenants/%s/operations-webhook).",
				herald.OperationsInstance, r.PathValue("tenant")))
			return
		}
		if action := auditActions[rt.pattern]; action != "" {
			// The principal before the handler: signing out clears it.
			p := st.principal
			held := audit.Hold(w)
			err := rt.handler(held, r)
			if err == nil && held.Succeeded() {
				u.record(r, action, p)
			}
			held.Release()
			if err != nil {
				u.renderError(w, r, err)
			}
			return
		}
		if err := rt.handler(w, r); err != nil {
			u.renderError(w, r, err)
		}
	})
}

// setCookie sets c, Secure when the request came over TLS or the UI is
// served as https:// by a proxy in front (Config.SecureCookies): a
// browser then never sends the cookie over plain HTTP.
func (u *ui) setCookie(w http.ResponseWriter, r *http.Request, c *http.Cookie) {
	c.Secure = r.TLS != nil || u.secureCookies
	http.SetCookie(w, c)
}

// toSignin sends a visitor without a (valid) session to the sign-in page,
// which brings them back here afterwards.
func (u *ui) toSignin(w http.ResponseWriter, r *http.Request) {
	next := r.URL.Path
	if r.Method == http.MethodGet && r.URL.RawQuery != "" {
		next += "?" + r.URL.RawQuery
	}
	if r.Method != http.MethodGet {
		next = ""
	}
	target := "/ui/signin?expired=1"
	if strings.Contains(state(r).ended, "without activity") {
		target = "/ui/signin?expired=idle"
	}
	if next != "" {
		target += "&next=" + url.QueryEscape(next)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext returns next when it is a path inside the UI, and the UI's home
// otherwise, so the sign-in form cannot be made to redirect elsewhere.
func safeNext(next string) string {
	if strings.HasPrefix(next, Prefix) && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") && !strings.Contains(next, "//") {
		return next
	}
	return Prefix
}

type signinData struct {
	// Email is the person's email as typed; Client the API client's name
	// (ClientForm: that form was the one posted).
	Email      string
	Client     string
	ClientForm bool
	// APIClients shows the API client form (Config.APIClientSignIn).
	APIClients bool
	Next       string
	Message    string // a notice, not an error ("You are signed out.")
	Error      string
}

func (u *ui) signinPage(w http.ResponseWriter, r *http.Request) error {
	st := state(r)
	q := r.URL.Query()
	d := signinData{Next: safeNext(q.Get("next")), APIClients: u.apiClientSignIn}
	if st.principal != nil {
		http.Redirect(w, r, d.Next, http.StatusSeeOther)
		return nil
	}
	switch {
	case q.Get("out") == "1":
		d.Message = "You are signed out."
	case q.Get("expired") == "idle":
		d.Message = "You were signed out after " + durationText(u.access.SessionIdle()) + " without activity. Please sign in again."
	case q.Get("expired") != "":
		d.Message = "Please sign in to continue."
	}
	if st.csrf == "" {
		if err := u.startPreSession(w, r); err != nil {
			return err
		}
	}
	return u.render(w, r, http.StatusOK, "signin", "Sign in", d)
}

// startPreSession sets a fresh pre-session cookie and the CSRF token that
// goes with it, for the sign-in form.
func (u *ui) startPreSession(w http.ResponseWriter, r *http.Request) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	u.setCookie(w, r, &http.Cookie{Name: preCookie, Value: v, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	state(r).csrf = u.access.MAC("webui-csrf.p." + v)
	return nil
}

// signin signs a person in with email, password and code, within the
// per-address limit of token requests; or, when Config.APIClientSignIn is
// on and the API client form was posted, exchanges an API client's name
// and secret for a token kept in the cookie.
func (u *ui) signin(w http.ResponseWriter, r *http.Request) error {
	if _, ok := r.PostForm["apiClient"]; ok && u.apiClientSignIn {
		return u.signinClient(w, r)
	}
	d := signinData{Email: strings.TrimSpace(r.PostForm.Get("email")), Next: safeNext(r.PostForm.Get("next")), APIClients: u.apiClientSignIn}
	password, code := r.PostForm.Get("password"), strings.TrimSpace(r.PostForm.Get("code"))
	status := http.StatusUnauthorized
	var res *access.SignInResult
	switch {
	case d.Email == "":
		d.Error = "Enter your email address."
	case password == "":
		d.Error = "Enter your password."
	case code == "":
		d.Error = "Enter the 6-digit code your authenticator app shows, or one of your recovery codes."
	default:
		var err error
		res, err = u.access.SignIn(r.Context(), access.UserCredentials{Email: d.Email, Password: password, Code: code, Address: r.RemoteAddr})
		if d.Error, status, err = signinRefusal(w, err, access.ErrBadSignIn, " Check them and try again."); err != nil {
			return err
		}
	}
	if d.Error != "" {
		return u.render(w, r, status, "signin", "Sign in", d)
	}
	u.setCookie(w, r, &http.Cookie{Name: sessionCookie, Value: res.SessionID, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteLaxMode})
	u.setCookie(w, r, &http.Cookie{Name: preCookie, Value: "", Path: Prefix, MaxAge: -1})
	u.log.InfoContext(r.Context(), "web ui sign-in", "user", res.User.ID, "tenant", res.User.Tenant)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
	return nil
}

// signinRefusal turns the error of a sign-in into what the form says and
// its status: "" and 401 when err is nil; bad (wrong credentials) with
// hint; another refusal as it is; 429 with Retry-After past the limits.
// Any other error is returned for the error page.
func signinRefusal(w http.ResponseWriter, err, bad error, hint string) (string, int, error) {
	var he *herald.Error
	switch code := herald.ErrorCode(err); {
	case err == nil:
		return "", http.StatusUnauthorized, nil
	case err == bad:
		return herald.ErrorMessage(err) + hint, http.StatusUnauthorized, nil
	case code == herald.EUNAUTHORIZED:
		return herald.ErrorMessage(err), http.StatusUnauthorized, nil
	case code == herald.ERATELIMITED && errors.As(err, &he):
		w.Header().Set("Retry-After", strconv.Itoa(int(he.RetryAfter/time.Second)))
		return he.Message, http.StatusTooManyRequests, nil
	}
	return "", 0, err
}

// signinClient exchanges an API client's name and secret for a session,
// within the same rate limits as the API's token requests.
func (u *ui) signinClient(w http.ResponseWriter, r *http.Request) error {
	d := signinData{Client: strings.TrimSpace(r.PostForm.Get("apiClient")), Next: safeNext(r.PostForm.Get("next")), ClientForm: true, APIClients: true}
	secret := r.PostForm.Get("secret")
	var g *access.Grant
	status := http.StatusUnauthorized
	switch {
	case d.Client == "":
		d.Error = "Enter the name of your API client, like \"admin\"."
	case secret == "":
		d.Error = "Enter the API client's secret: the one shown when the client was created (for admin, HERALD_ADMIN_SECRET)."
	default:
		var err error
		g, err = u.access.Exchange(r.Context(), access.Credentials{Client: d.Client, Secret: secret, Address: r.RemoteAddr})
		if d.Error, status, err = signinRefusal(w, err, access.ErrBadCredentials, " Check both and try again."); err != nil {
			return err
		}
	}
	if d.Error != "" {
		return u.render(w, r, status, "signin", "Sign in", d)
	}
	u.setCookie(w, r, &http.Cookie{Name: sessionCookie, Value: g.Token, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Expires: g.ExpiresAt})
	u.setCookie(w, r, &http.Cookie{Name: preCookie, Value: "", Path: Prefix, MaxAge: -1})
	u.log.InfoContext(r.Context(), "web ui sign-in", "client", g.Client.Name, "tenant", g.Client.Tenant)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
	return nil
}

// signout ends the session (a person's is deleted, an API client's token
// revoked), on every node, and the cookie goes from this browser.
func (u *ui) signout(w http.ResponseWriter, r *http.Request) error {
	if p := state(r).principal; p != nil && p.Kind == herald.PrincipalUser {
		if err := u.access.SignOut(r.Context(), p); err != nil {
			return err
		}
	} else if p != nil {
		if err := u.access.Revoke(r.Context(), p); err != nil {
			return err
		}
	}
	u.setCookie(w, r, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: -1, Expires: time.Unix(1, 0)})
	http.Redirect(w, r, "/ui/signin?out=1", http.StatusSeeOther)
	return nil
}

// durationText says a duration the way people do: "15 minutes".
func durationText(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d > time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	case d == time.Hour:
		return "an hour"
	case d%time.Minute == 0 && d > time.Minute:
		return strconv.Itoa(int(d/time.Minute)) + " minutes"
	case d == time.Minute:
		return "a minute"
	case d%time.Second == 0:
		return strconv.Itoa(int(d/time.Second)) + " seconds"
	}
	return d.String()
}
