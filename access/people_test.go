package access

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

const testPassword = "correct horse battery"

// enrol invites a user of acme with role and takes them through setup,
// returning their TOTP secret and recovery codes.
func (e *env) enrol(email string, role herald.Role) (secret string, codes []string) {
	e.t.Helper()
	inv, err := e.gate.InviteUser(e.ctx, "acme", email, "Person", role)
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.gate.SetPassword(e.ctx, inv.Token, testPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	code, _ := TOTPCode(u.TOTPSecret, e.clock.Now())
	codes, _, err = e.gate.ConfirmTOTP(e.ctx, inv.Token, code, "127.0.0.1:1")
	if err != nil {
		e.t.Fatal(err)
	}
	return u.TOTPSecret, codes
}

// nextCode moves the clock to the next TOTP step and returns its code.
func (e *env) nextCode(secret string) string {
	e.t.Helper()
	e.clock.Advance(30 * time.Second)
	c, _ := TOTPCode(secret, e.clock.Now())
	return c
}

func (e *env) signIn(email, password, code string) (*SignInResult, error) {
	return e.gate.SignIn(e.ctx, UserCredentials{Email: email, Password: password, Code: code, Address: "127.0.0.1:4242"})
}

func wantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	if herald.ErrorCode(err) != code || !strings.Contains(herald.ErrorMessage(err), msg) {
		t.Fatalf("error %v, want %s saying %q", err, code, msg)
	}
}

func TestUserSetupAndSignIn(t *testing.T) {
	e := mustEnv(t, Config{})
	inv, err := e.gate.InviteUser(e.ctx, "acme", "Jane@Example.com", "Jane Doe", herald.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if inv.User.Email != "jane@example.com" || !inv.ExpiresAt.Equal(e.clock.Now().Add(72*time.Hour)) {
		t.Fatalf("invitation %+v", inv)
	}
	_, err = e.gate.InviteUser(e.ctx, "acme", "x@example.com", "X", herald.RolePlatformAdmin)
	wantErr(t, err, herald.EINVALID, "platform-admin is not bound to a tenant")

	// A short password is refused, saying how long it must be.
	_, err = e.gate.SetPassword(e.ctx, inv.Token, "short pass")
	wantErr(t, err, herald.EINVALID, "The password is 10 characters long; it must have at least 12.")
	// TOTP cannot be confirmed before there is a password.
	_, _, err = e.gate.ConfirmTOTP(e.ctx, inv.Token, "000000", "")
	wantErr(t, err, herald.EUNPROCESSABLE, "Choose a password first")
	u, err := e.gate.SetPassword(e.ctx, inv.Token, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	// Not set up yet: no sign-in even with the right password.
	_, err = e.signIn("jane@example.com", testPassword, "")
	wantErr(t, err, herald.EUNAUTHORIZED, "The email, password or code is wrong.")
	_, _, err = e.gate.ConfirmTOTP(e.ctx, inv.Token, "123456", "")
	wantErr(t, err, herald.EINVALID, "not the current one")
	code, _ := TOTPCode(u.TOTPSecret, e.clock.Now())
	codes, _, err := e.gate.ConfirmTOTP(e.ctx, inv.Token, code, "")
	if err != nil || len(codes) != 10 {
		t.Fatalf("ConfirmTOTP: %d codes, %v", len(codes), err)
	}
	// The link is used up.
	_, err = e.gate.SetupUser(e.ctx, inv.Token)
	wantErr(t, err, herald.EUNAUTHORIZED, "was used already")
	_, err = e.gate.SetPassword(e.ctx, inv.Token, "another long password")
	wantErr(t, err, herald.EUNAUTHORIZED, "was used already")

	// The confirming code was used; the next step's code signs in.
	_, err = e.signIn("JANE@example.com", testPassword, code)
	wantErr(t, err, herald.EUNAUTHORIZED, "The email, password or code is wrong.")
	res, err := e.signIn("JANE@example.com", testPassword, e.nextCode(u.TOTPSecret))
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.gate.Session(e.ctx, res.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if kind, name := p.Actor(); kind != herald.ActorUser || name != "jane@example.com" || p.Tenant != "acme" || p.Role != herald.RoleAdmin {
		t.Fatalf("principal %+v", p)
	}
	// The same code does not sign in twice.
	c2, _ := TOTPCode(u.TOTPSecret, e.clock.Now())
	_, err = e.signIn("jane@example.com", testPassword, c2)
	wantErr(t, err, herald.EUNAUTHORIZED, "wrong")
	// Nothing secret reached the log.
	for _, s := range append([]string{testPassword, inv.Token, u.TOTPSecret, c2, res.SessionID}, codes...) {
		if strings.Contains(e.logs.String(), s) {
			t.Fatalf("the log holds a secret: %q", s)
		}
	}
}

func TestSetupLinkExpires(t *testing.T) {
	e := mustEnv(t, Config{SetupTTL: time.Hour})
	inv, err := e.gate.InviteUser(e.ctx, "acme", "late@example.com", "Late", herald.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	_, err = e.gate.SetupUser(e.ctx, inv.Token)
	wantErr(t, err, herald.EUNAUTHORIZED, "This setup link expired at 2026-11-26T18:00:00Z")
	_, err = e.gate.SetPassword(e.ctx, inv.Token, testPassword)
	wantErr(t, err, herald.EUNAUTHORIZED, "expired")
	// A new link replaces it.
	again, err := e.gate.NewSetupLink(e.ctx, "acme", "late@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.gate.SetupUser(e.ctx, again.Token); err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryCodeWorksOnce(t *testing.T) {
	e := mustEnv(t, Config{})
	_, codes := e.enrol("rec@example.com", herald.RoleViewer)
	res, err := e.signIn("rec@example.com", testPassword, strings.ToUpper(codes[3]))
	if err != nil || !res.RecoveryCodeUsed {
		t.Fatalf("first use of a recovery code: %+v, %v", res, err)
	}
	_, err = e.signIn("rec@example.com", testPassword, codes[3])
	wantErr(t, err, herald.EUNAUTHORIZED, "The email, password or code is wrong.")
	if _, err := e.signIn("rec@example.com", testPassword, codes[4]); err != nil {
		t.Fatalf("another recovery code: %v", err)
	}
}

func TestLockoutAfterTenFailures(t *testing.T) {
	e := mustEnv(t, Config{})
	e.gate.audit = e.store
	secret, _ := e.enrol("lock@example.com", herald.RoleViewer)
	for i := 1; i <= 9; i++ {
		_, err := e.signIn("lock@example.com", "wrong password "+string(rune('a'+i)), "")
		wantErr(t, err, herald.EUNAUTHORIZED, "The email, password or code is wrong.")
	}
	_, err := e.signIn("lock@example.com", "wrong again!!", "")
	wantErr(t, err, herald.EUNAUTHORIZED, "This account is locked after 10 failed sign-ins, until 2026-11-26T17:15:00Z")
	// The right password and code are refused while locked.
	_, err = e.signIn("lock@example.com", testPassword, e.nextCode(secret))
	wantErr(t, err, herald.EUNAUTHORIZED, "locked after 10 failed sign-ins, until 2026-11-26T17:15:00Z")
	e.clock.Advance(15 * time.Minute)
	if _, err := e.signIn("lock@example.com", testPassword, e.nextCode(secret)); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
	var actions []string
	_ = e.store.WalkAudit(e.ctx, func(a *herald.AuditEntry) error {
		actions = append(actions, a.Action)
		if strings.Contains(string(a.Diff), "wrong password") && strings.Contains(string(a.Diff), "wrong password b") {
			t.Fatalf("an audit entry holds the password tried: %s", a.Diff)
		}
		return nil
	})
	joined := strings.Join(actions, " ")
	if strings.Count(joined, "auth.sign-in.failed") != 11 || !strings.HasPrefix(joined, "user.setup.complete") || !strings.Contains(joined, "auth.locked") || !strings.HasSuffix(joined, "auth.sign-in") {
		t.Fatalf("audit actions %v", actions)
	}
}

func TestSessionLimits(t *testing.T) {
	e := mustEnv(t, Config{SessionIdle: 15 * time.Minute, SessionMax: 12 * time.Hour})
	secret, _ := e.enrol("s@example.com", herald.RoleViewer)
	res, err := e.signIn("s@example.com", testPassword, e.nextCode(secret))
	if err != nil {
		t.Fatal(err)
	}
	// Used every 14 minutes, it lives until its 12 hours are up.
	for e.clock.Now().Before(res.User.CreatedAt.Add(12*time.Hour - 15*time.Minute)) {
		e.clock.Advance(14 * time.Minute)
		if _, err := e.gate.Session(e.ctx, res.SessionID); err != nil {
			t.Fatalf("at %v: %v", e.clock.Now(), err)
		}
	}
	e.clock.Advance(14 * time.Minute)
	_, err = e.gate.Session(e.ctx, res.SessionID)
	wantErr(t, err, herald.EUNAUTHORIZED, "Sessions last at most 12 hours")

	// Idle for longer than 15 minutes: signed out.
	res, err = e.signIn("s@example.com", testPassword, e.nextCode(secret))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(15*time.Minute + time.Second)
	_, err = e.gate.Session(e.ctx, res.SessionID)
	wantErr(t, err, herald.EUNAUTHORIZED, "You were signed out after 15 minutes without activity")
}

func TestSignOutEverywhere(t *testing.T) {
	e := mustEnv(t, Config{})
	secret, _ := e.enrol("two@example.com", herald.RoleViewer)
	a, err := e.signIn("two@example.com", testPassword, e.nextCode(secret))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.signIn("two@example.com", testPassword, e.nextCode(secret))
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := e.gate.Session(e.ctx, a.SessionID)
	if err := e.gate.SignOut(e.ctx, pa); err != nil {
		t.Fatal(err)
	}
	_, err = e.gate.Session(e.ctx, a.SessionID)
	wantErr(t, err, herald.EUNAUTHORIZED, "Your session has ended")
	if _, err := e.gate.Session(e.ctx, b.SessionID); err != nil {
		t.Fatalf("signing out one browser ended the other: %v", err)
	}
	c, _ := e.signIn("two@example.com", testPassword, e.nextCode(secret))
	n, err := e.gate.SignOutEverywhere(e.ctx, "acme", "two@example.com")
	if err != nil || n != 2 {
		t.Fatalf("SignOutEverywhere = %d, %v; want 2", n, err)
	}
	for _, s := range []string{b.SessionID, c.SessionID} {
		_, err = e.gate.Session(e.ctx, s)
		wantErr(t, err, herald.EUNAUTHORIZED, "Your session has ended")
	}
}

// TestUserRolesAsClients: a user's principal passes access.Allowed exactly
// as an API client of the same tenant and role does.
func TestUserRolesAsClients(t *testing.T) {
	e := mustEnv(t, Config{})
	perms := []Perm{Authenticated, ReadConfig, ReadEvents, Produce, Design, Admin, Platform}
	for _, role := range []herald.Role{herald.RoleAdmin, herald.RoleDesigner, herald.RoleProducer, herald.RoleViewer} {
		secret, _ := e.enrol(string(role)+"@example.com", role)
		res, err := e.signIn(string(role)+"@example.com", testPassword, e.nextCode(secret))
		if err != nil {
			t.Fatal(err)
		}
		user, err := e.gate.Session(e.ctx, res.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		client := &herald.Principal{Client: "c", Tenant: "acme", Role: role}
		for _, perm := range perms {
			for _, tenant := range []string{"", "acme", "globex"} {
				if got, want := Allowed(user, perm, tenant) == nil, Allowed(client, perm, tenant) == nil; got != want {
					t.Errorf("role %s perm %d tenant %q: user allowed %v, client %v", role, perm, tenant, got, want)
				}
			}
		}
		if err := Allowed(user, Admin, "globex"); err == nil || !strings.Contains(herald.ErrorMessage(err), `User "`+string(role)+`@example.com" belongs to tenant "acme"`) {
			t.Errorf("another tenant: %v", err)
		}
	}
}

// TestPasswordInTheEmailFieldIsNotRecorded: a refused sign-in whose "email"
// is not an email address (a password typed into the wrong field) is on
// record without it.
func TestPasswordInTheEmailFieldIsNotRecorded(t *testing.T) {
	e := mustEnv(t, Config{})
	e.gate.audit = e.store
	e.enrol("p@example.com", herald.RoleViewer)
	if _, err := e.signIn("Correct-Horse-Battery-77", testPassword, "123456"); err == nil {
		t.Fatal("a sign-in with a password as the email was accepted")
	}
	if _, err := e.signIn("nobody@example.com", testPassword, "123456"); err == nil {
		t.Fatal("a sign-in of an unknown email was accepted")
	}
	var failed []*herald.AuditEntry
	_ = e.store.WalkAudit(e.ctx, func(a *herald.AuditEntry) error {
		if a.Action == "auth.sign-in.failed" {
			failed = append(failed, a)
		}
		if strings.Contains(a.Actor+a.Target+string(a.Diff), "Battery") {
			t.Errorf("the audit trail holds what was typed as the email: %+v", a)
		}
		return nil
	})
	if len(failed) != 2 || failed[0].Actor != "[not an email address]" || failed[1].Actor != "nobody@example.com" {
		t.Fatalf("refused sign-ins on record: %+v", failed)
	}
}
