// Package client is a typed Go client of Herald's REST API: what the demo,
// the benchmark, herald emit and the end-to-end tests use, and what a Go
// producer or admin tool can use instead of building requests by hand.
//
// A Client holds a base URL and credentials. Given an API client's name
// and secret (WithAPIClient) it takes a token on the first call and a
// fresh one when the token ends; given a token (WithToken) it sends that.
// Every answer that is not 2xx is an *Error carrying Herald's code,
// message and the field at fault.
//
//	c, err := client.New("https://herald.example.com", client.WithAPIClient("ehr-sync", secret))
//	accepted, err := c.SendEvents(ctx, "acme", "sandbox", client.Event{EventSubtype: "PATIENT_CREATED", PatientID: "p-1"})
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client calls one Herald. It is safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
	// name and secret are the API client's credentials, when it signs in
	// by itself; tenant narrows the sign-in to a tenant's client.
	name, secret, tenant string

	mu      sync.Mutex
	token   string
	expires time.Time // zero: not known (a token given by WithToken)
}

// Option configures a Client.
type Option func(*Client)

// WithToken makes the client send this bearer token.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithAPIClient makes the client sign in as this API client and take a
// new token whenever its token ends.
func WithAPIClient(name, secret string) Option {
	return func(c *Client) { c.name, c.secret = name, secret }
}

// WithTenant names the tenant of the API client given by WithAPIClient,
// for a name used by several tenants.
func WithTenant(tenant string) Option { return func(c *Client) { c.tenant = tenant } }

// WithHTTPClient makes the client send its requests with hc (for TLS
// settings or a proxy). The default has a 60 s timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client of the Herald at baseURL, such as
// "http://127.0.0.1:8080".
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q is not an http:// or https:// URL", baseURL)
	}
	c := &Client{base: strings.TrimSuffix(baseURL, "/"), hc: &http.Client{Timeout: 60 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL returns the URL the client calls.
func (c *Client) BaseURL() string { return c.base }

// Error is an answer that is not 2xx.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is Herald's error code ("invalid", "not_found", "unauthorized"...).
	Code string
	// Message says what was wrong and how to fix it.
	Message string
	// Field names the request field at fault, when one is.
	Field string
	// RequestID is the answer's X-Request-Id, which Herald's log names.
	RequestID string
	// RetryAfter is the answer's Retry-After, for 429 and 503.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("herald: HTTP %d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// StatusOf returns the HTTP status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Token is a bearer token and when it ends.
type Token struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// SignIn exchanges an API client's name and secret for a token, and makes
// the client use it from now on.
func (c *Client) SignIn(ctx context.Context, name, secret string) (Token, error) {
	var t Token
	body := map[string]string{"apiClient": name, "secret": secret}
	if c.tenant != "" {
		body["tenant"] = c.tenant
	}
	if err := c.send(ctx, "POST", "/v1/auth/token", nil, body, &t, ""); err != nil {
		return Token{}, err
	}
	c.mu.Lock()
	c.token, c.expires = t.Token, t.ExpiresAt
	c.mu.Unlock()
	return t, nil
}

// Token returns the token the client sends, signing in first when it has
// credentials and no token that is still good for a minute.
func (c *Client) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok, exp := c.token, c.expires
	c.mu.Unlock()
	if c.name == "" || (tok != "" && (exp.IsZero() || time.Until(exp) > time.Minute)) {
		return tok, nil
	}
	t, err := c.SignIn(ctx, c.name, c.secret)
	return t.Token, err
}

// Do sends a request to path (with query, which may be nil) with body
// encoded as JSON (none when nil) and decodes a 2xx answer into out (when
// not nil). It is the way to call what has no method here.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	tok, err := c.Token(ctx)
	if err != nil {
		return err
	}
	err = c.send(ctx, method, path, query, body, out, tok)
	if StatusOf(err) == http.StatusUnauthorized && c.name != "" {
		// The token ended or was revoked early: once more with a new one.
		if _, err = c.SignIn(ctx, c.name, c.secret); err != nil {
			return err
		}
		c.mu.Lock()
		tok = c.token
		c.mu.Unlock()
		err = c.send(ctx, method, path, query, body, out, tok)
	}
	return err
}

// header is an extra request header, for the calls that take one.
type headerKey struct{}

// withHeader returns ctx carrying a request header for send.
func withHeader(ctx context.Context, name, value string) context.Context {
	h, _ := ctx.Value(headerKey{}).(http.Header)
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(name, value)
	return context.WithValue(ctx, headerKey{}, h)
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, body, out any, token string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("client: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if h, ok := ctx.Value(headerKey{}).(http.Header); ok {
		for k, v := range h {
			req.Header[k] = v
		}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("client: read the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		json.Unmarshal(raw, &e)
		apiErr := &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field,
			RequestID: resp.Header.Get("X-Request-Id")}
		if apiErr.Message == "" {
			apiErr.Message = strings.TrimSpace(string(raw))
		}
		if s := resp.Header.Get("Retry-After"); s != "" {
			if d, err := time.ParseDuration(s + "s"); err == nil {
				apiErr.RetryAfter = d
			}
		}
		return apiErr
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("client: decode the answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// instancePath is the path of an instance's resources.
func instancePath(tenant, instance string) string {
	return "/v1/tenants/" + url.PathEscape(tenant) + "/instances/" + url.PathEscape(instance)
}
