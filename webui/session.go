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

// Cookies. The session cookie holds an access token (the same kind the API
// hands out for a secret), so every node accepts it and nothing is kept on
// the server. The pre-session cookie is a random value that binds the
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
			if p, err := u.access.Verify(r.Context(), c.Value); err == nil {
				st.principal = p
				seed = "s." + c.Value
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
	Client  string
	Next    string
	Message string // a notice, not an error ("You are signed out.")
	Error   string
}

func (u *ui) signinPage(w http.ResponseWriter, r *http.Request) error {
	st := state(r)
	q := r.URL.Query()
	d := signinData{Next: safeNext(q.Get("next"))}
	if st.principal != nil {
		http.Redirect(w, r, d.Next, http.StatusSeeOther)
		return nil
	}
	switch {
	case q.Get("out") == "1":
		d.Message = "You are signed out."
	case q.Get("expired") == "1":
		d.Message = "Please sign in to continue; sessions last an hour."
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

// signin exchanges an API client's name and secret for a session, within
// the same rate limits as the API's token requests.
func (u *ui) signin(w http.ResponseWriter, r *http.Request) error {
	d := signinData{Client: strings.TrimSpace(r.PostForm.Get("apiClient")), Next: safeNext(r.PostForm.Get("next"))}
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
		var he *herald.Error
		switch code := herald.ErrorCode(err); {
		case err == access.ErrBadCredentials:
			d.Error = herald.ErrorMessage(err) + " Check both and try again."
		case code == herald.EUNAUTHORIZED:
			d.Error = herald.ErrorMessage(err)
		case code == herald.ERATELIMITED && errors.As(err, &he):
			d.Error, status = he.Message, http.StatusTooManyRequests
			w.Header().Set("Retry-After", strconv.Itoa(int(he.RetryAfter/time.Second)))
		case err != nil:
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

// signout ends the session: its token is revoked, on every node, and the
// cookie goes from this browser.
func (u *ui) signout(w http.ResponseWriter, r *http.Request) error {
	if p := state(r).principal; p != nil {
		if err := u.access.Revoke(r.Context(), p); err != nil {
			return err
		}
	}
	u.setCookie(w, r, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: -1, Expires: time.Unix(1, 0)})
	http.Redirect(w, r, "/ui/signin?out=1", http.StatusSeeOther)
	return nil
}
