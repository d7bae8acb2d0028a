// Package herald holds Herald's domain: the types a webhook delivery service
// is made of (tenants, instances, API clients, designer webhooks, admin
// webhooks, events, deliveries, attempts), their validation, and the service
// interfaces the storage and the dispatch engine implement.
//
// The root package imports no subpackage. sqlstore implements the storage
// interfaces, dispatch sends deliveries, httpapi serves the REST API, and
// cmd/herald wires them together.
package herald

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Version is Herald's version, sent as user-agent "Herald/<Version>".
var Version = "0.1.0"

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidateName returns an EINVALID error naming field when name is not a slug:
// lower-case letters, digits and hyphens, starting with a letter or digit, at
// most 63 characters.
func ValidateName(field, name string) error {
	if name == "" {
		return FieldErrorf(field, "%s is required.", field)
	}
	if !slugRE.MatchString(name) {
		return FieldErrorf(field, "%s %q is not a valid name: use 1 to 63 lower-case letters, digits and hyphens, starting with a letter or digit (like \"acme\" or \"wh-patient-sync\").", field, name)
	}
	return nil
}

// NameValue is a header, query parameter or custom payload field.
type NameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Secret marks a header's or query parameter's value as a credential:
	// answers and pages show it masked (MaskValue). Unset when not given: a
	// webhook update decides by the name (SecretByDefault). Custom payload
	// fields are sent in the payload and cannot be secret.
	Secret Flag `json:"secret,omitempty"`
}

// Flag is an optional boolean that stays comparable: FlagUnset (the zero
// value, left out of JSON), FlagFalse or FlagTrue, true and false in JSON.
type Flag uint8

// Flag values.
const (
	FlagUnset Flag = iota
	FlagFalse
	FlagTrue
)

// FlagOf returns FlagTrue or FlagFalse.
func FlagOf(b bool) Flag {
	if b {
		return FlagTrue
	}
	return FlagFalse
}

// MarshalJSON writes true or false (FlagUnset, which omitempty leaves out,
// as false).
func (f Flag) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatBool(f == FlagTrue)), nil
}

// UnmarshalJSON reads true or false.
func (f *Flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*f = FlagTrue
	case "false":
		*f = FlagFalse
	case "null":
		*f = FlagUnset
	default:
		return fmt.Errorf("want true or false, got %s", b)
	}
	return nil
}

// Tenant is an organisation. It owns its designer, API clients and instances.
type Tenant struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// Instance is an environment of a tenant ("sandbox", "live"). Events,
// deliveries and webhook settings live per instance.
type Instance struct {
	Tenant    string    `json:"tenant"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// Role is what an API client may do.
type Role string

// Roles, from most to least powerful. A platform-admin is not bound to a
// tenant; every other role acts only within its own tenant.
const (
	RolePlatformAdmin Role = "platform-admin" // everything, including creating tenants
	RoleAdmin         Role = "admin"          // everything within its tenant
	RoleDesigner      Role = "designer"       // designer webhooks and publishing; reads
	RoleProducer      Role = "producer"       // posting events; reads of events and deliveries
	RoleViewer        Role = "viewer"         // reads only; never secrets
)

// Roles lists every valid role.
var Roles = []Role{RolePlatformAdmin, RoleAdmin, RoleDesigner, RoleProducer, RoleViewer}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	for _, v := range Roles {
		if r == v {
			return true
		}
	}
	return false
}

// APIClient is a named credential of a tenant, or of the platform, with a
// role. Its secret is shown once, when it is made; the store keeps only a
// slow hash of it (package access makes and checks them). Names are unique
// within a tenant; two tenants may each have a client of the same name.
type APIClient struct {
	// ID is made anew for every client. Tokens carry it, so a token ends
	// with its client and never passes to a client made later under the
	// same name.
	ID     string `json:"-"`
	Name   string `json:"name"`
	Tenant string `json:"tenant,omitempty"` // "" for a platform client
	Role   Role   `json:"role"`
	// Disabled clients get no tokens, and the tokens they have do not work.
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"createdAt"`
	// SecretRotatedAt is when the secret was last rotated; nil if never.
	SecretRotatedAt *time.Time `json:"secretRotatedAt"`
	// PreviousSecretExpiresAt is when the secret before the current one
	// stops working, while it is in its grace period; nil otherwise.
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt"`

	// Generation counts the client's secrets: 1 at creation, one more at
	// every rotation. A token carries the generation of the secret it was
	// issued for, so a rotation ends the tokens of the secrets it ends.
	Generation int `json:"-"`
	// SecretHash is the hash of the current secret, SecretID the lookup id
	// embedded in it ("" for a secret without one).
	SecretHash string `json:"-"`
	SecretID   string `json:"-"`
	// PreviousSecretHash and PreviousSecretID are the secret before the
	// current one, set only while PreviousSecretExpiresAt is in the future.
	PreviousSecretHash string `json:"-"`
	PreviousSecretID   string `json:"-"`
	// TokensValidFrom voids the tokens issued before it: it is set when a
	// disabled client is enabled again. Nil when there is no such cut.
	TokensValidFrom *time.Time `json:"-"`
}

// Principal kinds.
const (
	PrincipalAPIClient = "api-client"
	PrincipalUser      = "user"
)

// Principal is who is calling: the API client behind a bearer token, or
// the user behind a web UI session.
type Principal struct {
	// Kind is PrincipalAPIClient (the zero value counts as one) or
	// PrincipalUser.
	Kind string
	// UserID and Email name the user of a session.
	UserID string
	Email  string
	// SessionHash is the SHA-256 of the session id, by which a user's
	// session is ended.
	SessionHash string

	Client    string
	ClientID  string // APIClient.ID
	Tenant    string // "" for platform-admin
	Role      Role
	TokenID   string // the token's own id, by which it is revoked
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Actor returns how the audit trail names p: ActorUser and the user's
// email for a person, ActorAPIClient and the client's name for a system.
func (p *Principal) Actor() (kind, name string) {
	if p.Kind == PrincipalUser {
		return ActorUser, p.Email
	}
	return ActorAPIClient, p.Client
}

// Describe names p in a sentence: `user "jane@example.com"` or
// `API client "ehr-sync"`.
func (p *Principal) Describe() string {
	if p.Kind == PrincipalUser {
		return fmt.Sprintf("user %q", p.Email)
	}
	return fmt.Sprintf("API client %q", p.Client)
}

// NewSigningSecret returns a new webhook signing secret in the Standard
// Webhooks form: "whsec_" and the base64 of 32 random bytes.
func NewSigningSecret() string {
	return "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("herald: crypto/rand failed: " + err.Error())
	}
	return b
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewID returns prefix + "_" + 22 base62 characters: 48 bits of milliseconds
// since the epoch then 80 random bits. IDs made later sort after IDs made
// earlier (to the millisecond), which makes them good cursors.
func NewID(prefix string, now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	copy(b[6:], randomBytes(10))
	return FormatID(prefix, binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]))
}

// FormatID returns prefix + "_" + the 128-bit number hi:lo as 22 base62
// digits, most significant first, in ASCII order, so that the text sorts
// as the number: the form of NewID, for stores that make IDs of their own.
func FormatID(prefix string, hi, lo uint64) string {
	var out [22]byte
	for i := len(out) - 1; i >= 0; i-- {
		// Divide the 128-bit number hi:lo by 62.
		qhi, rhi := hi/62, hi%62
		// (rhi<<64 + lo) / 62 without overflow: split lo into two 32-bit halves.
		t := rhi<<32 | lo>>32
		q1, r1 := t/62, t%62
		t2 := r1<<32 | lo&0xffffffff
		q2, r2 := t2/62, t2%62
		hi, lo = qhi, q1<<32|q2
		out[i] = base62[r2]
	}
	return prefix + "_" + string(out[:])
}
