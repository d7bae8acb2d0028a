package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
)

// Bearer tokens are self-contained, so every node accepts them without a
// lookup: "v1.<base64url payload>.<base64url HMAC-SHA256(key, "v1."+payload)>",
// the key being Store.TokenKey (the same on every node of a deployment).
// There is no revocation: a token lives until it expires (Config.TokenTTL).
const tokenPrefix = "v1."

// tokenClaims is the payload of a bearer token.
type tokenClaims struct {
	Client  string      `json:"c"`
	Tenant  string      `json:"t,omitempty"`
	Role    herald.Role `json:"r"`
	Expires int64       `json:"exp"` // unix seconds
}

// key returns the token signing key, fetching it from the store on first
// use. A failed fetch is not cached, so the next request tries again.
func (s *server) key(ctx context.Context) ([]byte, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.tokenKey != nil {
		return s.tokenKey, nil
	}
	k, err := s.store.TokenKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if len(k) < 16 {
		return nil, fmt.Errorf("token key: store returned %d bytes, want at least 16", len(k))
	}
	s.tokenKey = k
	return k, nil
}

func sign(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issueToken returns a bearer token for c and when it expires.
func (s *server) issueToken(ctx context.Context, c *herald.APIClient) (string, time.Time, error) {
	key, err := s.key(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := s.now().Add(s.tokenTTL).Truncate(time.Second)
	payload, err := json.Marshal(tokenClaims{Client: c.Name, Tenant: c.Tenant, Role: c.Role, Expires: exp.Unix()})
	if err != nil {
		return "", time.Time{}, err
	}
	msg := tokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	return msg + "." + sign(key, msg), exp, nil
}

// verifyToken returns the principal a bearer token stands for, or
// EUNAUTHORIZED saying whether it is malformed, forged or expired.
func (s *server) verifyToken(ctx context.Context, token string) (*herald.Principal, error) {
	msg, sig, ok := cutLast(token, ".")
	if !ok || !strings.HasPrefix(msg, tokenPrefix) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token is malformed; get a token from POST /v1/auth/token.")
	}
	key, err := s.key(ctx)
	if err != nil {
		return nil, err
	}
	want := sign(key, msg)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token's signature is invalid: it was not issued by this deployment or was altered.")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(msg, tokenPrefix))
	if err != nil {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token is malformed; get a token from POST /v1/auth/token.")
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.Client == "" || !c.Role.Valid() {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token is malformed; get a token from POST /v1/auth/token.")
	}
	exp := time.Unix(c.Expires, 0).UTC()
	if !s.now().Before(exp) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token expired at %s; get a new one from POST /v1/auth/token.", exp.Format(time.RFC3339))
	}
	return &herald.Principal{Client: c.Client, Tenant: c.Tenant, Role: c.Role, ExpiresAt: exp}, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

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
func (s *server) authorize(r *http.Request, p perm) (*http.Request, error) {
	if p == permPublic {
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
	pr, err := s.verifyToken(r.Context(), strings.TrimSpace(token))
	if err != nil {
		return r, err
	}
	r = r.WithContext(context.WithValue(r.Context(), principalKey{}, pr))
	if info := reqInfoFrom(r.Context()); info != nil {
		info.client = pr.Client
	}
	if pr.Role == herald.RolePlatformAdmin {
		return r, nil
	}
	if t := r.PathValue("tenant"); t != "" && t != pr.Tenant {
		return r, herald.Errorf(herald.EFORBIDDEN, "API client %q belongs to tenant %q and cannot act on tenant %q.", pr.Client, pr.Tenant, t)
	}
	if !slices.Contains(allowedRoles[p], pr.Role) {
		return r, herald.Errorf(herald.EFORBIDDEN, "API client %q has role %s; this call needs role %s.", pr.Client, pr.Role, rolesText(p))
	}
	return r, nil
}

func rolesText(p perm) string {
	var names []string
	for _, r := range allowedRoles[p] {
		names = append(names, string(r))
	}
	names = append(names, string(herald.RolePlatformAdmin))
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
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
	c, err := s.checkClient(r.Context(), req.APIClient, req.Secret)
	if err != nil {
		return err
	}
	tok, exp, err := s.issueToken(r.Context(), c)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expiresAt": exp.UTC().Format(time.RFC3339)})
}

var errBadCredentials = herald.Errorf(herald.EUNAUTHORIZED, "The API client name or secret is wrong.")

// checkClient returns the API client named name when secret is its secret,
// and EUNAUTHORIZED otherwise, without saying which of the two was wrong.
func (s *server) checkClient(ctx context.Context, name, secret string) (*herald.APIClient, error) {
	c, err := s.store.GetAPIClient(ctx, name)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		herald.SecretMatches(secret, "") // same work as a known client
		return nil, errBadCredentials
	} else if err != nil {
		return nil, err
	}
	if !herald.SecretMatches(secret, c.SecretHash) {
		return nil, errBadCredentials
	}
	return c, nil
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
	c, err := s.checkClient(r.Context(), id, secret)
	if herald.ErrorCode(err) == herald.EUNAUTHORIZED {
		return &oauthError{http.StatusUnauthorized, "invalid_client", "The client_id or client_secret is wrong."}
	} else if err != nil {
		return err
	}
	tok, _, err := s.issueToken(r.Context(), c)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	return writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int64(s.tokenTTL / time.Second),
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
