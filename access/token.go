package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
)

// Tokens are self-contained, so every node accepts them without a lookup:
// "v1.<base64url payload>.<base64url HMAC-SHA256(key, "v1."+payload)>", the
// key being the store's TokenKey (the same on every node of a deployment).
// There is no revocation: a token lives until it expires.
const tokenPrefix = "v1."

// claims is the payload of a token.
type claims struct {
	Client  string      `json:"c"`
	Tenant  string      `json:"t,omitempty"`
	Role    herald.Role `json:"r"`
	Expires int64       `json:"exp"` // unix seconds
}

// KeyStore gives the deployment's token signing key; herald.TenantService
// implements it.
type KeyStore interface {
	TokenKey(ctx context.Context) ([]byte, error)
}

// Tokens issues and verifies tokens with the key of a KeyStore, fetched on
// first use. It is safe for concurrent use.
type Tokens struct {
	keys KeyStore
	now  func() time.Time
	ttl  time.Duration

	mu  sync.Mutex
	key []byte
}

// NewTokens returns Tokens signing with keys' key, on the clock now (nil:
// time.Now), whose tokens live for ttl.
func NewTokens(keys KeyStore, now func() time.Time, ttl time.Duration) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{keys: keys, now: now, ttl: ttl}
}

// TTL returns how long an issued token is valid.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// signingKey returns the token signing key, fetching it from the store on
// first use. A failed fetch is not cached, so the next call tries again.
func (t *Tokens) signingKey(ctx context.Context) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.key != nil {
		return t.key, nil
	}
	k, err := t.keys.TokenKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if len(k) < 16 {
		return nil, fmt.Errorf("token key: store returned %d bytes, want at least 16", len(k))
	}
	t.key = k
	return k, nil
}

func sign(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// MAC returns the base64url HMAC-SHA256 of msg under the token key, for
// values derived from a token that must not be forgeable (a form's CSRF
// token). Callers should prefix msg with what it is for, so a MAC for one
// purpose is never valid for another.
func (t *Tokens) MAC(ctx context.Context, msg string) (string, error) {
	key, err := t.signingKey(ctx)
	if err != nil {
		return "", err
	}
	return sign(key, msg), nil
}

// Issue returns a token for c and when it expires.
func (t *Tokens) Issue(ctx context.Context, c *herald.APIClient) (string, time.Time, error) {
	key, err := t.signingKey(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := t.now().Add(t.ttl).Truncate(time.Second)
	payload, err := json.Marshal(claims{Client: c.Name, Tenant: c.Tenant, Role: c.Role, Expires: exp.Unix()})
	if err != nil {
		return "", time.Time{}, err
	}
	msg := tokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	return msg + "." + sign(key, msg), exp, nil
}

// Verify returns the principal a token stands for, or EUNAUTHORIZED saying
// whether it is malformed, forged or expired.
func (t *Tokens) Verify(ctx context.Context, token string) (*herald.Principal, error) {
	msg, sig, ok := cutLast(token, ".")
	if !ok || !strings.HasPrefix(msg, tokenPrefix) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token is malformed; get a token from POST /v1/auth/token.")
	}
	key, err := t.signingKey(ctx)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal([]byte(sig), []byte(sign(key, msg))) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token's signature is invalid: it was not issued by this deployment or was altered.")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(msg, tokenPrefix))
	if err != nil {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token is malformed; get a token from POST /v1/auth/token.")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil || c.Client == "" || !c.Role.Valid() {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token is malformed; get a token from POST /v1/auth/token.")
	}
	exp := time.Unix(c.Expires, 0).UTC()
	if !t.now().Before(exp) {
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

// ClientStore finds API clients; herald.TenantService implements it.
type ClientStore interface {
	GetAPIClient(ctx context.Context, name string) (*herald.APIClient, error)
}

// ErrBadCredentials is the EUNAUTHORIZED error of CheckClient: it does not
// say whether the name or the secret was wrong.
var ErrBadCredentials = herald.Errorf(herald.EUNAUTHORIZED, "The API client name or secret is wrong.")

// CheckClient returns the API client named name when secret is its secret,
// and ErrBadCredentials otherwise, doing the same work for an unknown name
// as for a wrong secret.
func CheckClient(ctx context.Context, clients ClientStore, name, secret string) (*herald.APIClient, error) {
	c, err := clients.GetAPIClient(ctx, name)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		herald.SecretMatches(secret, "") // same work as a known client
		return nil, ErrBadCredentials
	} else if err != nil {
		return nil, err
	}
	if !herald.SecretMatches(secret, c.SecretHash) {
		return nil, ErrBadCredentials
	}
	return c, nil
}
