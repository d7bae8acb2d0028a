package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhooks/herald"
)

// People sign in to the web UI with an email, a password (argon2id, like
// API client secrets) and a TOTP code or a one-time recovery code. An
// admin invites them; the invitation is a setup link, a random token
// whose SHA-256 the store keeps, good for Config.SetupTTL until the person
// has chosen a password and confirmed a TOTP code. A signed-in browser
// holds a random session id in its cookie; the store keeps its SHA-256
// with the user, when it was made and when it was last used, so a session
// ends when idle too long, when too old, at sign-out, and at once on every
// node when an admin signs the user out everywhere (sessions are rows).

// MinPasswordLength is the shortest password a person may choose.
const MinPasswordLength = 12

// maxPasswordLength bounds what is hashed.
const maxPasswordLength = 1024

// recoveryCodes is how many recovery codes a person gets.
const recoveryCodes = 10

// sessionPrefix starts every session id, so a cookie value says whether
// it is a session or an API client's token.
const sessionPrefix = "hss_"

// IsSessionID reports whether a cookie value is a session id (rather than
// an API client's token).
func IsSessionID(v string) bool { return strings.HasPrefix(v, sessionPrefix) }

// randomToken returns prefix and the unpadded base64url of n random bytes.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// quickHash is the hex SHA-256 of a random value: enough for values with
// 256 bits of entropy (session ids, setup tokens) and recovery codes (100
// bits), which no one guesses, unlike passwords.
func quickHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// validateUserRole checks the role of a user of tenant ("" for the
// platform, whose users are platform-admins).
func validateUserRole(tenant string, role herald.Role) error {
	switch {
	case tenant == "" && role != herald.RolePlatformAdmin:
		return herald.FieldErrorf("role", "a user outside any tenant must have role platform-admin.")
	case tenant == "":
		return nil
	case role == "":
		return herald.FieldErrorf("role", "role is required: one of admin, designer, producer, viewer.")
	case role == herald.RolePlatformAdmin:
		return herald.FieldErrorf("role", "role platform-admin is not bound to a tenant, so it cannot be given in one; use admin, designer, producer or viewer (platform admins are made with herald users create --platform-admin).")
	case !role.Valid():
		return herald.FieldErrorf("role", "role %q is not a role; use admin, designer, producer or viewer.", role)
	}
	return nil
}

// Invitation is a new user and their one-time setup link's token.
type Invitation struct {
	User *herald.User
	// Token goes in the setup link, /ui/setup/<Token>; shown this once.
	Token     string
	ExpiresAt time.Time
}

// InviteUser creates a user of tenant ("" and RolePlatformAdmin for a
// platform admin) and returns their setup token. EINVALID naming the
// field (email, displayName, role); ECONFLICT when the email is taken;
// ENOTFOUND for an unknown tenant.
func (g *Gate) InviteUser(ctx context.Context, tenant, email, displayName string, role herald.Role) (*Invitation, error) {
	email, err := herald.NormalizeEmail("email", email)
	if err != nil {
		return nil, err
	}
	displayName = strings.TrimSpace(displayName)
	switch {
	case displayName == "":
		return nil, herald.FieldErrorf("displayName", "displayName is required: the name people see, like \"Jane Doe\".")
	case utf8.RuneCountInString(displayName) > 100:
		return nil, herald.FieldErrorf("displayName", "displayName is %d characters; keep it to 100.", utf8.RuneCountInString(displayName))
	}
	if err := validateUserRole(tenant, role); err != nil {
		return nil, err
	}
	u := &herald.User{Email: email, DisplayName: displayName, Tenant: tenant, Role: role}
	if err := g.store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return g.newSetupLink(ctx, u)
}

// NewSetupLink gives a user who has not finished setting up a new setup
// link, ending the earlier one. ECONFLICT when the user's setup is
// complete; ENOTFOUND as GetUser.
func (g *Gate) NewSetupLink(ctx context.Context, tenant, email string) (*Invitation, error) {
	u, err := g.store.GetUser(ctx, tenant, email)
	if err != nil {
		return nil, err
	}
	if u.SetupComplete {
		return nil, herald.Errorf(herald.ECONFLICT, "user %q has set up their account already.", u.Email)
	}
	return g.newSetupLink(ctx, u)
}

func (g *Gate) newSetupLink(ctx context.Context, u *herald.User) (*Invitation, error) {
	tok := randomToken("", 32)
	exp := g.now().Add(g.setupTTL)
	if err := g.store.CreateSetupToken(ctx, &herald.SetupToken{Hash: quickHash(tok), UserID: u.ID, ExpiresAt: exp}); err != nil {
		return nil, err
	}
	return &Invitation{User: u, Token: tok, ExpiresAt: exp}, nil
}

// errSetupLink refuses a setup link that is unknown, used or replaced.
var errSetupLink = herald.Errorf(herald.EUNAUTHORIZED, "This setup link does not work: it was used already, replaced by a newer one, or never existed. Ask an admin of your tenant for a new one.")

// SetupUser returns the user a setup token belongs to. EUNAUTHORIZED
// saying so when the link expired, was used, or was replaced.
func (g *Gate) SetupUser(ctx context.Context, token string) (*herald.User, error) {
	t, err := g.store.GetSetupToken(ctx, quickHash(token))
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return nil, errSetupLink
	}
	if err != nil {
		return nil, err
	}
	if !g.now().Before(t.ExpiresAt) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "This setup link expired at %s. Ask an admin of your tenant for a new one.", t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	u, err := g.store.UserByID(ctx, t.UserID)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return nil, errSetupLink
	}
	return u, err
}

// SetPassword sets the password of the user of a setup token, and gives
// them a TOTP secret to enrol when they have none yet. EINVALID naming
// the field password when it is shorter than MinPasswordLength; the
// errors of SetupUser.
func (g *Gate) SetPassword(ctx context.Context, token, password string) (*herald.User, error) {
	u, err := g.SetupUser(ctx, token)
	if err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(password); n < MinPasswordLength {
		return nil, herald.FieldErrorf("password", "The password is %d characters long; it must have at least %d. A few unrelated words make a long password that is easy to remember.", n, MinPasswordLength)
	}
	if len(password) > maxPasswordLength {
		return nil, herald.FieldErrorf("password", "The password is longer than %d bytes; choose a shorter one.", maxPasswordLength)
	}
	hash, err := hashSecret(ctx, password)
	if err != nil {
		return nil, err
	}
	if err := g.store.SetUserPassword(ctx, u.ID, hash); err != nil {
		return nil, err
	}
	u.PasswordHash = hash
	if u.TOTPSecret == "" || u.TOTPEnabled {
		u.TOTPSecret, u.TOTPEnabled = newTOTPSecret(), false
		if err := g.store.SetUserTOTP(ctx, u.ID, u.TOTPSecret, false); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// TOTPURI returns the otpauth:// URI of a user's TOTP secret, issued by
// Herald.
func (g *Gate) TOTPURI(u *herald.User) string { return TOTPURI("Herald", u.Email, u.TOTPSecret) }

// ConfirmTOTP completes the setup of the user of a setup token: code must
// be the current code of the TOTP secret SetPassword gave them. It ends
// the setup link and returns the user's recovery codes, shown this once.
// EUNPROCESSABLE when no password was set yet; EINVALID naming the field
// code when the code is wrong; the errors of SetupUser.
func (g *Gate) ConfirmTOTP(ctx context.Context, token, code, address string) ([]string, *herald.User, error) {
	u, err := g.SetupUser(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	if u.PasswordHash == "" || u.TOTPSecret == "" {
		return nil, nil, herald.Errorf(herald.EUNPROCESSABLE, "Choose a password first.")
	}
	step, ok := checkTOTP(u.TOTPSecret, code, g.now())
	if !ok {
		return nil, nil, herald.FieldErrorf("code", "That code is not the current one of your authenticator app. Check that the app's clock is right, and enter the 6 digits it shows now.")
	}
	if ok, err := g.store.DeleteSetupToken(ctx, quickHash(token)); err != nil {
		return nil, nil, err
	} else if !ok {
		return nil, nil, errSetupLink // another request completed it
	}
	if err := g.store.SetUserTOTP(ctx, u.ID, u.TOTPSecret, true); err != nil {
		return nil, nil, err
	}
	if _, err := g.store.UseTOTPStep(ctx, u.ID, step); err != nil {
		return nil, nil, err
	}
	codes, err := g.newRecoveryCodes(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	u.TOTPEnabled, u.SetupComplete = true, true
	g.record(ctx, &herald.AuditEntry{ActorType: herald.ActorUser, Actor: u.Email, ActorTenant: u.Tenant, Role: u.Role,
		Source: sourceHost(address), Tenant: u.Tenant, Action: "user.setup.complete", Target: "user " + u.Email})
	return codes, u, nil
}

// newRecoveryCodes gives a user new recovery codes and returns them:
// 10 codes of 20 base32 letters and digits (100 bits) in groups of five.
func (g *Gate) newRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	var codes, hashes []string
	for range recoveryCodes {
		b := make([]byte, 13)
		_, _ = rand.Read(b)
		s := strings.ToLower(enc.EncodeToString(b))[:20]
		code := s[:5] + "-" + s[5:10] + "-" + s[10:15] + "-" + s[15:]
		codes = append(codes, code)
		hashes = append(hashes, quickHash(normRecovery(code)))
	}
	if err := g.store.ReplaceRecoveryCodes(ctx, userID, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

// normRecovery is a recovery code as hashed: lower case, without spaces
// and hyphens, however it was typed.
func normRecovery(code string) string {
	return strings.NewReplacer("-", "", " ", "").Replace(strings.ToLower(strings.TrimSpace(code)))
}

// UserCredentials are what the sign-in form presents.
type UserCredentials struct {
	Email    string
	Password string
	// Code is the current TOTP code, or one of the recovery codes.
	Code string
	// Address is the request's TCP peer, for the per-address limit.
	Address string
}

// ErrBadSignIn is the EUNAUTHORIZED error of a sign-in whose email,
// password or code is wrong: it does not say which.
var ErrBadSignIn = herald.Errorf(herald.EUNAUTHORIZED, "The email, password or code is wrong.")

// SignInResult is a new session.
type SignInResult struct {
	// SessionID goes in the cookie; the store keeps only its hash.
	SessionID string
	User      *herald.User
	// RecoveryCodeUsed is true when a recovery code stood in for the TOTP
	// code; RecoveryCodesLeft is how many are left then.
	RecoveryCodeUsed bool
}

// SignIn checks a person's email, password and code and returns a new
// session. Errors: ERATELIMITED when the address made too many sign-in
// attempts in the window; EUNAUTHORIZED saying until when when the
// account is locked (after Config.LockAfter failures in a row, for
// Config.LockFor), whatever the password; ErrBadSignIn otherwise. It costs
// one argon2id hash whether or not the email is known. Sign-ins, refusals
// and lockouts are audited, never with the password or code tried.
func (g *Gate) SignIn(ctx context.Context, cr UserCredentials) (*SignInResult, error) {
	if err := g.limits.admit(ctx, "", cr.Address); err != nil {
		return nil, err
	}
	email := strings.ToLower(strings.TrimSpace(cr.Email))
	// Who the refused sign-in claimed to be goes on record only when it is
	// an email address: anything else may be a password typed into the
	// wrong field.
	actor := email
	if _, err := herald.NormalizeEmail("email", email); err != nil {
		actor = "[not an email address]"
	}
	fail := func(u *herald.User, reason string) error {
		diff, _ := json.Marshal(map[string]string{"reason": reason})
		e := &herald.AuditEntry{ActorType: herald.ActorUser, Actor: actor, Source: sourceHost(cr.Address),
			Action: "auth.sign-in.failed", Target: "user " + actor, Diff: diff}
		if u != nil {
			e.ActorTenant, e.Tenant = u.Tenant, u.Tenant
		}
		g.record(ctx, e)
		g.log.WarnContext(ctx, "sign-in refused", "address", cr.Address, "reason", reason)
		if u == nil {
			return ErrBadSignIn
		}
		n, err := g.store.CountSignInFailure(ctx, u.ID)
		if err != nil {
			return err
		}
		if n >= g.lockAfter {
			until := g.now().Add(g.lockFor)
			if err := g.store.LockUser(ctx, u.ID, until); err != nil {
				return err
			}
			diff, _ := json.Marshal(map[string]string{"until": until.UTC().Format(time.RFC3339), "failures": fmt.Sprint(n)})
			g.record(ctx, &herald.AuditEntry{ActorType: herald.ActorUser, Actor: u.Email, ActorTenant: u.Tenant, Source: sourceHost(cr.Address),
				Tenant: u.Tenant, Action: "auth.locked", Target: "user " + u.Email, Diff: diff})
			return g.lockedError(until)
		}
		return ErrBadSignIn
	}
	u, err := g.store.UserByEmail(ctx, email)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		if _, _, err := checkSecret(ctx, cr.Password, decoyHash); err != nil {
			return nil, err
		}
		return nil, fail(nil, "no such user")
	}
	if err != nil {
		return nil, err
	}
	if u.LockedUntil != nil {
		diff, _ := json.Marshal(map[string]string{"reason": "locked", "until": u.LockedUntil.UTC().Format(time.RFC3339)})
		g.record(ctx, &herald.AuditEntry{ActorType: herald.ActorUser, Actor: u.Email, ActorTenant: u.Tenant, Source: sourceHost(cr.Address),
			Tenant: u.Tenant, Action: "auth.sign-in.failed", Target: "user " + u.Email, Diff: diff})
		return nil, g.lockedError(*u.LockedUntil)
	}
	hash := u.PasswordHash
	if hash == "" {
		hash = decoyHash
	}
	match, _, err := checkSecret(ctx, cr.Password, hash)
	if err != nil {
		return nil, err
	}
	if !match || !u.SetupComplete {
		reason := "wrong password"
		if match {
			reason = "setup not complete"
		}
		return nil, fail(u, reason)
	}
	res := &SignInResult{User: u}
	if step, ok := checkTOTP(u.TOTPSecret, cr.Code, g.now()); ok {
		fresh, err := g.store.UseTOTPStep(ctx, u.ID, step)
		if err != nil {
			return nil, err
		}
		if !fresh {
			return nil, fail(u, "TOTP code used already")
		}
	} else {
		used, err := g.store.UseRecoveryCode(ctx, u.ID, quickHash(normRecovery(cr.Code)))
		if err != nil {
			return nil, err
		}
		if !used {
			return nil, fail(u, "wrong code")
		}
		res.RecoveryCodeUsed = true
	}
	if u.FailedSignIns > 0 {
		if err := g.store.ClearSignInFailures(ctx, u.ID); err != nil {
			return nil, err
		}
	}
	now := g.now()
	res.SessionID = randomToken(sessionPrefix, 32)
	if err := g.store.CreateSession(ctx, &herald.Session{IDHash: quickHash(res.SessionID), UserID: u.ID, CreatedAt: now, LastSeen: now}); err != nil {
		return nil, err
	}
	var diff json.RawMessage
	if res.RecoveryCodeUsed {
		diff, _ = json.Marshal(map[string]string{"secondFactor": "recovery code"})
	}
	g.record(ctx, &herald.AuditEntry{ActorType: herald.ActorUser, Actor: u.Email, ActorTenant: u.Tenant, Role: u.Role,
		Source: sourceHost(cr.Address), Tenant: u.Tenant, Action: "auth.sign-in", Target: "user " + u.Email, Diff: diff})
	return res, nil
}

func (g *Gate) lockedError(until time.Time) error {
	mins := int((until.Sub(g.now()) + time.Minute - 1) / time.Minute)
	return herald.Errorf(herald.EUNAUTHORIZED, "This account is locked after %d failed sign-ins, until %s (in %d minutes). Try again then, or ask an admin of your tenant.",
		g.lockAfter, until.UTC().Format(time.RFC3339), mins)
}

// Session returns the principal of a session id. EUNAUTHORIZED saying why
// when there is no such session (signed out, signed out everywhere, the
// user deleted), or it was idle longer than Config.SessionIdle, or is older
// than Config.SessionMax; those two are deleted. A session that is good
// is marked as used now.
func (g *Gate) Session(ctx context.Context, id string) (*herald.Principal, error) {
	if !IsSessionID(id) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "Please sign in.")
	}
	hash := quickHash(id)
	s, err := g.store.GetSession(ctx, hash)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "Your session has ended: you signed out, or an admin signed you out everywhere. Please sign in again.")
	}
	if err != nil {
		return nil, err
	}
	now := g.now()
	var ended string
	switch {
	case now.Sub(s.LastSeen) > g.sessionIdle:
		ended = fmt.Sprintf("You were signed out after %s without activity. Please sign in again.", durationText(g.sessionIdle))
	case now.Sub(s.CreatedAt) > g.sessionMax:
		ended = fmt.Sprintf("Sessions last at most %s. Please sign in again.", durationText(g.sessionMax))
	}
	if ended != "" {
		if err := g.store.DeleteSession(ctx, hash); err != nil {
			g.log.WarnContext(ctx, "could not delete an ended session; it is refused anyway", "err", err)
		}
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "%s", ended)
	}
	u, err := g.store.UserByID(ctx, s.UserID)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "Your account was deleted.")
	}
	if err != nil {
		return nil, err
	}
	if err := g.store.TouchSession(ctx, hash, now); err != nil {
		return nil, err
	}
	return &herald.Principal{Kind: herald.PrincipalUser, UserID: u.ID, Email: u.Email, SessionHash: hash,
		Tenant: u.Tenant, Role: u.Role, IssuedAt: s.CreatedAt, ExpiresAt: s.CreatedAt.Add(g.sessionMax)}, nil
}

// SignOut ends the session of p, a user's principal.
func (g *Gate) SignOut(ctx context.Context, p *herald.Principal) error {
	if p == nil || p.SessionHash == "" {
		return herald.Errorf(herald.EUNAUTHORIZED, "There is no session to end.")
	}
	return g.store.DeleteSession(ctx, p.SessionHash)
}

// SignOutEverywhere ends every session of a user of tenant and returns
// how many there were. ENOTFOUND as GetUser.
func (g *Gate) SignOutEverywhere(ctx context.Context, tenant, email string) (int, error) {
	u, err := g.store.GetUser(ctx, tenant, email)
	if err != nil {
		return 0, err
	}
	return g.store.DeleteUserSessions(ctx, u.ID)
}

// SetUserRole changes the role of a user of tenant. EINVALID naming the
// field role; ENOTFOUND as GetUser. The user's sessions take the new role
// at their next request.
func (g *Gate) SetUserRole(ctx context.Context, tenant, email string, role herald.Role) (*herald.User, error) {
	if tenant == "" {
		return nil, herald.FieldErrorf("role", "platform admins keep role platform-admin.")
	}
	if err := validateUserRole(tenant, role); err != nil {
		return nil, err
	}
	return g.store.SetUserRole(ctx, tenant, email, role)
}

// DeleteUser deletes a user of tenant, ending their sessions. ENOTFOUND
// as GetUser.
func (g *Gate) DeleteUser(ctx context.Context, tenant, email string) error {
	return g.store.DeleteUser(ctx, tenant, email)
}

// SessionIdle and SessionMax return the session limits.
func (g *Gate) SessionIdle() time.Duration { return g.sessionIdle }

// SessionMax returns how long a session lasts at most.
func (g *Gate) SessionMax() time.Duration { return g.sessionMax }

// durationText says a duration the way people do: "15 minutes", "12 hours".
func durationText(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d >= time.Hour:
		if d == time.Hour {
			return "an hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0 && d >= time.Minute:
		if d == time.Minute {
			return "a minute"
		}
		return fmt.Sprintf("%d minutes", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%d seconds", d/time.Second)
	}
	return d.String()
}
