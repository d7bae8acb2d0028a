package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/keyring"
)

// Tokens are self-contained, so every node accepts them without a lookup:
// "v2.<key id>.<base64url payload>.<base64url HMAC-SHA256>", the MAC taken
// over everything before it with a key derived from the master key named by
// the key ID. The signing key is never stored: a copy of the database gives
// nothing to forge a token with. A token signed under a master key that was
// rotated out of first place stays valid until it expires, as long as that
// key is still in the ring.
const tokenPrefix = "v2."

// Derived-key purposes. Each use of the master key gets its own key.
const (
	tokenPurpose = "token"
	macPurpose   = "mac"
)

// claims is the payload of a token.
type claims struct {
	Client  string      `json:"c"`
	Tenant  string      `json:"t,omitempty"`
	Role    herald.Role `json:"r"`
	Expires int64       `json:"exp"` // unix seconds
}

// Tokens issues and verifies tokens with keys derived from a master key
// ring. It is safe for concurrent use.
type Tokens struct {
	now func() time.Time
	ttl time.Duration

	kid    string            // the newest master key's ID: tokens are signed under it
	sign   []byte            // the token key of the newest master key
	verify map[string][]byte // token keys by master key ID
	mac    []byte            // the key of MAC, from the newest master key
}

// NewTokens returns Tokens signing with keys derived from ring's newest
// master key and verifying with those of every key in it, on the clock now
// (nil: time.Now), whose tokens live for ttl.
func NewTokens(ring *keyring.Ring, now func() time.Time, ttl time.Duration) *Tokens {
	if now == nil {
		now = time.Now
	}
	kid, key := ring.Derived(tokenPurpose)
	_, mac := ring.Derived(macPurpose)
	return &Tokens{now: now, ttl: ttl, kid: kid, sign: key, verify: ring.DerivedAll(tokenPurpose), mac: mac}
}

// TTL returns how long an issued token is valid.
func (t *Tokens) TTL() time.Duration { return t.ttl }

func sign(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// MAC returns the base64url HMAC-SHA256 of msg under a key derived from the
// master key, for values derived from a token that must not be forgeable (a
// form's CSRF token). Callers should prefix msg with what it is for, so a
// MAC for one purpose is never valid for another.
func (t *Tokens) MAC(ctx context.Context, msg string) (string, error) {
	return sign(t.mac, msg), nil
}

// Issue returns a token for c and when it expires.
func (t *Tokens) Issue(ctx context.Context, c *herald.APIClient) (string, time.Time, error) {
	exp := t.now().Add(t.ttl).Truncate(time.Second)
	payload, err := json.Marshal(claims{Client: c.Name, Tenant: c.Tenant, Role: c.Role, Expires: exp.Unix()})
	if err != nil {
		return "", time.Time{}, err
	}
	msg := tokenPrefix + t.kid + "." + base64.RawURLEncoding.EncodeToString(payload)
	return msg + "." + sign(t.sign, msg), exp, nil
}

var errMalformed = herald.Errorf(herald.EUNAUTHORIZED, "The bearer token is malformed; get a token from POST /v1/auth/token.")

// Verify returns the principal a token stands for, or EUNAUTHORIZED saying
// whether it is malformed, forged or expired.
func (t *Tokens) Verify(ctx context.Context, token string) (*herald.Principal, error) {
	msg, sig, ok := cutLast(token, ".")
	rest, prefixed := strings.CutPrefix(msg, tokenPrefix)
	if !ok || !prefixed {
		return nil, errMalformed
	}
	kid, body, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, errMalformed
	}
	key, known := t.verify[kid]
	if !known {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token was signed under a master key this deployment no longer holds, or was not issued by it; get a new one from POST /v1/auth/token.")
	}
	if !hmac.Equal([]byte(sig), []byte(sign(key, msg))) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token's signature is invalid: it was not issued by this deployment or was altered.")
	}
	payload, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, errMalformed
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil || c.Client == "" || !c.Role.Valid() {
		return nil, errMalformed
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
