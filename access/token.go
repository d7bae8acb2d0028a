package access

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/keyring"
)

// Tokens are self-contained, so every node checks their signature and
// expiry without a lookup: "v3.<key id>.<base64url payload>.<base64url
// HMAC-SHA256>", the MAC taken over everything before it with a key derived
// from the master key named by the key ID. The signing key is never stored:
// a copy of the database gives nothing to forge a token with. A token signed
// under a master key that was rotated out of first place stays valid until
// it expires, as long as that key is still in the ring.
//
// Whether the client behind a token still stands (not deleted, disabled or
// rotated past the token's secret) and whether the token was revoked is
// checked against the state the Gate keeps (state.go), not here.
const tokenPrefix = "v3."

// Tokens of earlier versions, which carry neither an id nor the client's
// generation, and so could not be revoked.
var oldTokenPrefixes = []string{"v1.", "v2."}

// Derived-key purposes. Each use of the master key gets its own key.
const (
	tokenPurpose = "token"
	macPurpose   = "mac"
)

// claims is the payload of a token.
type claims struct {
	ID       string      `json:"jti"` // random: what revocation names
	ClientID string      `json:"cid"` // herald.APIClient.ID
	Client   string      `json:"c"`
	Tenant   string      `json:"t,omitempty"`
	Role     herald.Role `json:"r"`
	Gen      int         `json:"g"`   // the generation of the secret the token was issued for
	Issued   int64       `json:"iat"` // unix milliseconds
	Expires  int64       `json:"exp"` // unix seconds
}

// tokens signs and verifies tokens with keys derived from a master key
// ring. It is immutable after newTokens, so safe for concurrent use.
type tokens struct {
	now func() time.Time
	ttl time.Duration

	kid    string            // the newest master key's ID: tokens are signed under it
	sign   []byte            // the token key of the newest master key
	verify map[string][]byte // token keys by master key ID
	mac    []byte            // the key of MAC, from the newest master key
}

func newTokens(ring *keyring.Ring, now func() time.Time, ttl time.Duration) *tokens {
	kid, key := ring.Derived(tokenPurpose)
	_, mac := ring.Derived(macPurpose)
	return &tokens{now: now, ttl: ttl, kid: kid, sign: key, verify: ring.DerivedAll(tokenPurpose), mac: mac}
}

func sign(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue returns a token for c, whose secret of generation gen was shown,
// issued at issued, and when it expires.
func (t *tokens) issue(c *herald.APIClient, gen int, issued time.Time) (string, *claims, error) {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	cl := &claims{
		ID: base64.RawURLEncoding.EncodeToString(id), ClientID: c.ID, Client: c.Name, Tenant: c.Tenant, Role: c.Role,
		Gen: gen, Issued: issued.UnixMilli(), Expires: t.now().Add(t.ttl).Unix(),
	}
	payload, err := json.Marshal(cl)
	if err != nil {
		return "", nil, err
	}
	msg := tokenPrefix + t.kid + "." + base64.RawURLEncoding.EncodeToString(payload)
	return msg + "." + sign(t.sign, msg), cl, nil
}

var errMalformed = herald.Errorf(herald.EUNAUTHORIZED, "The bearer token is malformed; get a token from POST /v1/auth/token.")

// parse returns the claims of a token whose signature is valid and which
// has not expired, or EUNAUTHORIZED saying whether it is malformed, from an
// earlier version, forged or expired.
func (t *tokens) parse(token string) (*claims, error) {
	msg, sig, ok := cutLast(token, ".")
	rest, prefixed := strings.CutPrefix(msg, tokenPrefix)
	if !ok || !prefixed {
		for _, p := range oldTokenPrefixes {
			if strings.HasPrefix(token, p) {
				return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token was issued by an earlier version of Herald, whose tokens cannot be revoked and are no longer accepted; get a new one from POST /v1/auth/token.")
			}
		}
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
	if err := json.Unmarshal(payload, &c); err != nil || c.ID == "" || c.ClientID == "" || c.Client == "" || !c.Role.Valid() || c.Gen < 1 {
		return nil, errMalformed
	}
	exp := time.Unix(c.Expires, 0).UTC()
	if !t.now().Before(exp) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "The bearer token expired at %s; get a new one from POST /v1/auth/token.", exp.Format(time.RFC3339))
	}
	return &c, nil
}

// principal is who the claims stand for.
func (c *claims) principal() *herald.Principal {
	return &herald.Principal{Client: c.Client, ClientID: c.ClientID, Tenant: c.Tenant, Role: c.Role, TokenID: c.ID,
		IssuedAt: time.UnixMilli(c.Issued).UTC(), ExpiresAt: time.Unix(c.Expires, 0).UTC()}
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
