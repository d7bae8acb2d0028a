package herald

import (
	"context"
	"net/mail"
	"strings"
	"time"
)

// User is a person who signs in to the web UI: with an email, a password
// and a TOTP code. A user belongs to one tenant with a role in it, as an
// API client does, or to the platform as a platform-admin. API clients
// remain the credentials of systems.
type User struct {
	ID          string    `json:"-"`
	Email       string    `json:"email"` // lower case: unique whatever the case it was given in
	DisplayName string    `json:"displayName"`
	Tenant      string    `json:"tenant,omitempty"` // "" for a platform-admin
	Role        Role      `json:"role"`
	CreatedAt   time.Time `json:"createdAt"`
	// SetupComplete is true once the user chose a password and confirmed a
	// TOTP code: only then can they sign in.
	SetupComplete bool `json:"setupComplete"`
	// LockedUntil is set while sign-ins are refused after too many
	// failures; nil otherwise.
	LockedUntil *time.Time `json:"lockedUntil"`

	// PasswordHash is the argon2id hash of the password ("" before setup).
	PasswordHash string `json:"-"`
	// TOTPSecret is the base32 TOTP secret: sealed at rest by the store.
	// It is set when enrolment starts; TOTPEnabled once a code confirmed it.
	TOTPSecret  string `json:"-"`
	TOTPEnabled bool   `json:"-"`
	// TOTPLastStep is the time step of the last code accepted, so a code
	// is good once.
	TOTPLastStep int64 `json:"-"`
	// FailedSignIns counts the sign-ins refused since the last success or
	// lockout.
	FailedSignIns int `json:"-"`
}

// NormalizeEmail returns email trimmed and in lower case, or EINVALID
// naming the field when it is not an address.
func NormalizeEmail(field, email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" {
		return "", FieldErrorf(field, "%s is required: the person's email address, like jane@example.com.", field)
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 254 || !strings.Contains(e[strings.IndexByte(e, '@')+1:], ".") {
		return "", FieldErrorf(field, "%s %q is not an email address like jane@example.com.", field, email)
	}
	return e, nil
}

// Session is a signed-in browser of a user, kept server-side. The store
// keeps only the SHA-256 of the session id the cookie holds.
type Session struct {
	IDHash    string
	UserID    string
	CreatedAt time.Time
	LastSeen  time.Time
}

// SetupToken is the one-time link an invited user sets up their account
// with; the store keeps its SHA-256 only.
type SetupToken struct {
	Hash      string
	UserID    string
	ExpiresAt time.Time
}

// UserService keeps users, their recovery codes, setup tokens and
// sessions. Hashes are made and checked in package access; here they are
// opaque strings. The TOTP secret is sealed by the store.
type UserService interface {
	// CreateUser stores u (Email normalised by the caller, Tenant, Role,
	// DisplayName), filling in ID and CreatedAt. ECONFLICT if a user has
	// that email in any letter case; ENOTFOUND for an unknown tenant.
	CreateUser(ctx context.Context, u *User) error
	// GetUser returns the user of tenant ("" for the platform) with email.
	// ENOTFOUND naming the tenant, or the user.
	GetUser(ctx context.Context, tenant, email string) (*User, error)
	// UserByEmail returns the user with email in any tenant, for sign-in.
	// ENOTFOUND when there is none.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// UserByID returns a user or ENOTFOUND.
	UserByID(ctx context.Context, id string) (*User, error)
	// ListUsers returns the users of a tenant ("" for the platform)
	// sorted by email. ENOTFOUND for an unknown tenant.
	ListUsers(ctx context.Context, tenant string) ([]*User, error)
	// SetUserRole changes a user's role and returns the user. ENOTFOUND
	// as GetUser.
	SetUserRole(ctx context.Context, tenant, email string, role Role) (*User, error)
	// DeleteUser deletes a user with their sessions, recovery codes and
	// setup tokens. ENOTFOUND as GetUser.
	DeleteUser(ctx context.Context, tenant, email string) error

	// SetUserPassword stores a new password hash.
	SetUserPassword(ctx context.Context, userID, hash string) error
	// SetUserTOTP stores the TOTP secret (sealed) and whether it is
	// confirmed; enabling it completes the setup.
	SetUserTOTP(ctx context.Context, userID, secret string, enabled bool) error
	// UseTOTPStep records step as the last accepted TOTP step; false,
	// changing nothing, when a step at or after it was accepted already.
	UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	// ReplaceRecoveryCodes replaces the user's recovery code hashes.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error
	// UseRecoveryCode deletes the recovery code with hash, reporting
	// whether it was there: each code is good once.
	UseRecoveryCode(ctx context.Context, userID, hash string) (bool, error)
	// CountSignInFailure adds one to the user's failed sign-ins and returns
	// the count.
	CountSignInFailure(ctx context.Context, userID string) (int, error)
	// LockUser refuses the user's sign-ins until until, resetting the
	// failure count.
	LockUser(ctx context.Context, userID string, until time.Time) error
	// ClearSignInFailures resets the failure count and any lock.
	ClearSignInFailures(ctx context.Context, userID string) error

	// CreateSetupToken stores a setup token, replacing the user's earlier
	// ones.
	CreateSetupToken(ctx context.Context, t *SetupToken) error
	// GetSetupToken returns the token with hash. ENOTFOUND when there is
	// none (never made, used, or replaced).
	GetSetupToken(ctx context.Context, hash string) (*SetupToken, error)
	// DeleteSetupToken deletes a token, reporting whether it was there.
	DeleteSetupToken(ctx context.Context, hash string) (bool, error)

	// CreateSession stores a session.
	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns the session with hash, or ENOTFOUND.
	GetSession(ctx context.Context, hash string) (*Session, error)
	// TouchSession sets the session's LastSeen.
	TouchSession(ctx context.Context, hash string, at time.Time) error
	// DeleteSession deletes a session; a missing one is no error.
	DeleteSession(ctx context.Context, hash string) error
	// DeleteUserSessions deletes every session of a user and returns how
	// many there were.
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
	// PurgeSessions deletes the sessions last seen before idleBefore or
	// created before createdBefore, and setup tokens expired by then.
	PurgeSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int, error)
}
