package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
)

type principalKey struct{}

// principal returns the caller of an authenticated route.
func principal(r *http.Request) *herald.Principal {
	p, _ := r.Context().Value(principalKey{}).(*herald.Principal)
	return p
}

// authorize checks the bearer token of r against the route's perm and, on
// success, puts the principal in r's context (and the access log). Other
// tenants' routes are 403, not 404: the path names the tenant, so hiding
// whether it exists would protect nothing a tenant name does not already
// say, and a clear 403 is easier to act on.
func (s *server) authorize(r *http.Request, p access.Perm) (*http.Request, error) {
	if p == access.Public {
		return r, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return r, herald.Errorf(herald.EUNAUTHORIZED, "This call needs an Authorization: Bearer <token> header; get a token from POST /v1/auth/token.")
	}
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return r, herald.Errorf(herald.EUNAUTHORIZED, "The Authorization header must be \"Bearer <token>\"; get a token from POST /v1/auth/token.")
	}
	pr, err := s.access.Verify(r.Context(), strings.TrimSpace(token))
	if err != nil {
		return r, err
	}
	r = r.WithContext(context.WithValue(r.Context(), principalKey{}, pr))
	if info := reqInfoFrom(r.Context()); info != nil {
		info.client = pr.Client
	}
	return r, access.Allowed(pr, p, r.PathValue("tenant"))
}

// token exchanges API client credentials for a bearer token: JSON
// {"apiClient","secret"}, or the OAuth2 client credentials grant (form,
// with the client in the form or in HTTP Basic auth).
func (s *server) token(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, 64<<10)
	if err != nil {
		return err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	_, _, basic := r.BasicAuth()
	// A form is the OAuth2 grant, unless its body is plainly JSON: that is
	// `curl -d '{"apiClient":...}'`, which sends JSON under a form type.
	if (mt == "application/x-www-form-urlencoded" && !looksLikeJSON(body)) || (basic && mt == "") {
		r.Body = io.NopCloser(bytes.NewReader(body))
		return s.oauthToken(w, r)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return herald.Errorf(herald.EINVALID, "The request body is empty; send {\"apiClient\":\"...\",\"secret\":\"...\"}, or an OAuth2 client credentials form.")
	}
	if err := checkJSONContentType(r, body); err != nil {
		return err
	}
	var req struct {
		APIClient string `json:"apiClient"`
		Secret    string `json:"secret"`
		Tenant    string `json:"tenant"`
	}
	if err := unmarshalStrict(body, &req, ""); err != nil {
		return err
	}
	if req.APIClient == "" {
		return herald.FieldErrorf("apiClient", "apiClient is required: the name of your API client.")
	}
	if req.Secret == "" {
		return herald.FieldErrorf("secret", "secret is required: the secret shown when the API client was created.")
	}
	g, err := s.access.Exchange(r.Context(), access.Credentials{Client: req.APIClient, Tenant: req.Tenant, Secret: req.Secret, Address: r.RemoteAddr})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, map[string]any{"token": g.Token, "expiresAt": g.ExpiresAt.Format(time.RFC3339)})
}

// revoke revokes the token it is called with, on every node.
func (s *server) revoke(w http.ResponseWriter, r *http.Request) error {
	var req struct{}
	if err := decodeJSON(w, r, &req, bodyOptional); err != nil {
		return err
	}
	if err := s.access.Revoke(r.Context(), principal(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// oauthError is an RFC 6749 section 5.2 error response.
type oauthError struct {
	status      int
	code        string
	description string
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

// oauthToken implements the OAuth2 client credentials grant (RFC 6749
// section 4.4). Its errors are OAuth2 errors, not Herald's error shape,
// because OAuth2 client libraries parse them.
func (s *server) oauthToken(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return &oauthError{http.StatusBadRequest, "invalid_request", "The form body could not be read: " + err.Error()}
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 {
			return &oauthError{http.StatusBadRequest, "invalid_request", fmt.Sprintf("Parameter %s is repeated.", k)}
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return &oauthError{http.StatusBadRequest, "invalid_request", "grant_type is required; use grant_type=client_credentials."}
	default:
		return &oauthError{http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported; use client_credentials.", gt)}
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 section 2.3.1: Basic credentials are form-urlencoded first.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if form.Has("client_id") || form.Has("client_secret") {
			return &oauthError{http.StatusBadRequest, "invalid_request", "Send the client credentials either in the Authorization header or in the form, not both."}
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" || secret == "" {
		return &oauthError{http.StatusUnauthorized, "invalid_client", "Client authentication is required: client_id and client_secret, in the form or as HTTP Basic auth."}
	}
	g, err := s.access.Exchange(r.Context(), access.Credentials{Client: id, Secret: secret, Address: r.RemoteAddr})
	if err == access.ErrBadCredentials {
		return &oauthError{http.StatusUnauthorized, "invalid_client", "The client_id or client_secret is wrong."}
	} else if herald.ErrorCode(err) == herald.EUNAUTHORIZED {
		return &oauthError{http.StatusUnauthorized, "invalid_client", herald.ErrorMessage(err)}
	} else if err != nil {
		return err // rate limits and outages answer in Herald's shape, with their status
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	return writeJSON(w, http.StatusOK, map[string]any{
		"access_token": g.Token,
		"token_type":   "Bearer",
		"expires_in":   int64(s.access.TTL() / time.Second),
	})
}

// writeOAuthError writes an RFC 6749 error response.
func writeOAuthError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		if _, _, basic := r.BasicAuth(); basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="herald"`)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(map[string]string{"error": e.code, "error_description": e.description})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(buf.Bytes())
}
