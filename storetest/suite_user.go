package storetest

import (
	"time"

	"github.com/heraldhooks/herald"
)

// Users, their recovery codes, setup tokens and sessions. Hashes are
// opaque strings to the store (package access makes them), so these tests
// store placeholders; the TOTP secret is a real value the store must give
// back as it was given.

func init() {
	register("Users", func(e *env) {
		_, err := e.S.CreateTenant(e.Ctx, "acme")
		e.must(err)
		jane := &herald.User{Email: "Jane@Example.com", DisplayName: "Jane Doe", Tenant: "acme", Role: herald.RoleAdmin}
		e.must(e.S.CreateUser(e.Ctx, jane))
		if jane.ID == "" || jane.Email != "jane@example.com" || !jane.CreatedAt.Equal(Epoch) {
			e.Fatalf("CreateUser filled in %+v, want an ID, the email in lower case and the creation time", jane)
		}
		// Emails are unique in any case, across tenants and the platform.
		err = e.S.CreateUser(e.Ctx, &herald.User{Email: "JANE@example.com", DisplayName: "J", Role: herald.RolePlatformAdmin})
		e.wantCode(err, herald.ECONFLICT, `a user with email "jane@example.com" already exists.`)
		err = e.S.CreateUser(e.Ctx, &herald.User{Email: "x@example.com", Tenant: "nobody", Role: herald.RoleViewer})
		e.wantCode(err, herald.ENOTFOUND, `tenant "nobody" not found.`)
		err = e.S.CreateUser(e.Ctx, &herald.User{Email: "not an email", Tenant: "acme", Role: herald.RoleViewer})
		e.wantCode(err, herald.EINVALID, "email")
		e.must(e.S.CreateUser(e.Ctx, &herald.User{Email: "ops@example.com", DisplayName: "Ops", Role: herald.RolePlatformAdmin}))

		got, err := e.S.GetUser(e.Ctx, "acme", "JANE@example.COM")
		e.must(err)
		if got.ID != jane.ID || got.DisplayName != "Jane Doe" || got.Role != herald.RoleAdmin || got.SetupComplete || got.LockedUntil != nil {
			e.Fatalf("GetUser = %+v", got)
		}
		_, err = e.S.GetUser(e.Ctx, "", "jane@example.com")
		e.wantCode(err, herald.ENOTFOUND, `platform user "jane@example.com" not found.`)
		_, err = e.S.GetUser(e.Ctx, "initech", "jane@example.com")
		e.wantCode(err, herald.ENOTFOUND, `tenant "initech" not found.`)
		if u, err := e.S.UserByEmail(e.Ctx, "ops@EXAMPLE.com"); err != nil || u.Tenant != "" || u.Role != herald.RolePlatformAdmin {
			e.Fatalf("UserByEmail = %+v, %v", u, err)
		}
		if u, err := e.S.UserByID(e.Ctx, jane.ID); err != nil || u.Email != "jane@example.com" {
			e.Fatalf("UserByID = %+v, %v", u, err)
		}
		list, err := e.S.ListUsers(e.Ctx, "acme")
		e.must(err)
		if len(list) != 1 || list[0].Email != "jane@example.com" {
			e.Fatalf("ListUsers(acme) = %v", list)
		}

		// Password, TOTP (the secret comes back as given), setup complete.
		e.must(e.S.SetUserPassword(e.Ctx, jane.ID, "pw-hash"))
		e.must(e.S.SetUserTOTP(e.Ctx, jane.ID, "JBSWY3DPEHPK3PXP", false))
		got, _ = e.S.UserByID(e.Ctx, jane.ID)
		if got.PasswordHash != "pw-hash" || got.TOTPSecret != "JBSWY3DPEHPK3PXP" || got.TOTPEnabled || got.SetupComplete {
			e.Fatalf("after password and TOTP secret: %+v", got)
		}
		e.must(e.S.SetUserTOTP(e.Ctx, jane.ID, "JBSWY3DPEHPK3PXP", true))
		got, _ = e.S.UserByID(e.Ctx, jane.ID)
		if !got.TOTPEnabled || !got.SetupComplete {
			e.Fatalf("after confirming TOTP: %+v", got)
		}
		// A TOTP step is accepted once, and never an earlier one.
		for _, c := range []struct {
			step int64
			ok   bool
		}{{100, true}, {100, false}, {99, false}, {101, true}} {
			ok, err := e.S.UseTOTPStep(e.Ctx, jane.ID, c.step)
			e.must(err)
			if ok != c.ok {
				e.Fatalf("UseTOTPStep(%d) = %v, want %v", c.step, ok, c.ok)
			}
		}

		// Recovery codes: each works once; replacing drops the old ones.
		e.must(e.S.ReplaceRecoveryCodes(e.Ctx, jane.ID, []string{"r1", "r2"}))
		for _, c := range []struct {
			hash string
			ok   bool
		}{{"r1", true}, {"r1", false}, {"nope", false}} {
			ok, err := e.S.UseRecoveryCode(e.Ctx, jane.ID, c.hash)
			e.must(err)
			if ok != c.ok {
				e.Fatalf("UseRecoveryCode(%s) = %v, want %v", c.hash, ok, c.ok)
			}
		}
		e.must(e.S.ReplaceRecoveryCodes(e.Ctx, jane.ID, []string{"r3"}))
		if ok, _ := e.S.UseRecoveryCode(e.Ctx, jane.ID, "r2"); ok {
			e.Fatal("a replaced recovery code still worked")
		}

		// Failures and lockout.
		for i := 1; i <= 3; i++ {
			n, err := e.S.CountSignInFailure(e.Ctx, jane.ID)
			e.must(err)
			if n != i {
				e.Fatalf("CountSignInFailure = %d, want %d", n, i)
			}
		}
		until := Epoch.Add(15 * time.Minute)
		e.must(e.S.LockUser(e.Ctx, jane.ID, until))
		got, _ = e.S.UserByID(e.Ctx, jane.ID)
		if got.LockedUntil == nil || !got.LockedUntil.Equal(until) || got.FailedSignIns != 0 {
			e.Fatalf("after LockUser: locked until %v, %d failures", got.LockedUntil, got.FailedSignIns)
		}
		e.Clock.Advance(16 * time.Minute)
		got, _ = e.S.UserByID(e.Ctx, jane.ID)
		if got.LockedUntil != nil {
			e.Fatalf("a lock that ended is still shown: %v", got.LockedUntil)
		}
		_, _ = e.S.CountSignInFailure(e.Ctx, jane.ID)
		e.must(e.S.ClearSignInFailures(e.Ctx, jane.ID))
		if got, _ = e.S.UserByID(e.Ctx, jane.ID); got.FailedSignIns != 0 {
			e.Fatalf("ClearSignInFailures left %d", got.FailedSignIns)
		}

		// Role change.
		u, err := e.S.SetUserRole(e.Ctx, "acme", "jane@example.com", herald.RoleViewer)
		e.must(err)
		if u.Role != herald.RoleViewer {
			e.Fatalf("SetUserRole = %+v", u)
		}
		_, err = e.S.SetUserRole(e.Ctx, "acme", "nobody@example.com", herald.RoleViewer)
		e.wantCode(err, herald.ENOTFOUND, `user "nobody@example.com" of tenant "acme" not found.`)
	})

	register("UserSetupTokensAndSessions", func(e *env) {
		_, err := e.S.CreateTenant(e.Ctx, "acme")
		e.must(err)
		u := &herald.User{Email: "sam@example.com", DisplayName: "Sam", Tenant: "acme", Role: herald.RoleDesigner}
		e.must(e.S.CreateUser(e.Ctx, u))

		// A new setup token replaces the earlier one.
		e.must(e.S.CreateSetupToken(e.Ctx, &herald.SetupToken{Hash: "t1", UserID: u.ID, ExpiresAt: Epoch.Add(time.Hour)}))
		e.must(e.S.CreateSetupToken(e.Ctx, &herald.SetupToken{Hash: "t2", UserID: u.ID, ExpiresAt: Epoch.Add(72 * time.Hour)}))
		_, err = e.S.GetSetupToken(e.Ctx, "t1")
		e.wantCode(err, herald.ENOTFOUND)
		tok, err := e.S.GetSetupToken(e.Ctx, "t2")
		e.must(err)
		if tok.UserID != u.ID || !tok.ExpiresAt.Equal(Epoch.Add(72*time.Hour)) {
			e.Fatalf("GetSetupToken = %+v", tok)
		}
		if ok, _ := e.S.DeleteSetupToken(e.Ctx, "t2"); !ok {
			e.Fatal("DeleteSetupToken did not find the token")
		}
		if ok, _ := e.S.DeleteSetupToken(e.Ctx, "t2"); ok {
			e.Fatal("a setup token was deleted twice")
		}

		// Sessions.
		for _, h := range []string{"s1", "s2"} {
			e.must(e.S.CreateSession(e.Ctx, &herald.Session{IDHash: h, UserID: u.ID, CreatedAt: Epoch, LastSeen: Epoch}))
		}
		e.must(e.S.TouchSession(e.Ctx, "s1", Epoch.Add(time.Minute)))
		e.must(e.S.TouchSession(e.Ctx, "s1", Epoch.Add(time.Second))) // never back
		s, err := e.S.GetSession(e.Ctx, "s1")
		e.must(err)
		if s.UserID != u.ID || !s.CreatedAt.Equal(Epoch) || !s.LastSeen.Equal(Epoch.Add(time.Minute)) {
			e.Fatalf("GetSession = %+v", s)
		}
		e.must(e.S.DeleteSession(e.Ctx, "s1"))
		_, err = e.S.GetSession(e.Ctx, "s1")
		e.wantCode(err, herald.ENOTFOUND)
		e.must(e.S.CreateSession(e.Ctx, &herald.Session{IDHash: "s3", UserID: u.ID, CreatedAt: Epoch, LastSeen: Epoch}))
		n, err := e.S.DeleteUserSessions(e.Ctx, u.ID)
		e.must(err)
		if n != 2 {
			e.Fatalf("DeleteUserSessions = %d, want 2", n)
		}

		// Purge: idle, too old, and expired setup tokens go.
		e.must(e.S.CreateSession(e.Ctx, &herald.Session{IDHash: "idle", UserID: u.ID, CreatedAt: Epoch, LastSeen: Epoch}))
		e.must(e.S.CreateSession(e.Ctx, &herald.Session{IDHash: "live", UserID: u.ID, CreatedAt: Epoch, LastSeen: Epoch.Add(time.Hour)}))
		e.must(e.S.CreateSetupToken(e.Ctx, &herald.SetupToken{Hash: "old", UserID: u.ID, ExpiresAt: Epoch.Add(time.Minute)}))
		e.Clock.Advance(time.Hour)
		n, err = e.S.PurgeSessions(e.Ctx, Epoch.Add(30*time.Minute), Epoch.Add(-time.Hour))
		e.must(err)
		if n != 2 {
			e.Fatalf("PurgeSessions = %d, want 2 (one idle session, one expired setup token)", n)
		}
		if _, err := e.S.GetSession(e.Ctx, "live"); err != nil {
			e.Fatalf("the live session was purged: %v", err)
		}

		// Deleting a user takes their sessions and tokens along.
		e.must(e.S.CreateSetupToken(e.Ctx, &herald.SetupToken{Hash: "t3", UserID: u.ID, ExpiresAt: Epoch.Add(72 * time.Hour)}))
		e.must(e.S.DeleteUser(e.Ctx, "acme", "SAM@example.com"))
		_, err = e.S.GetSession(e.Ctx, "live")
		e.wantCode(err, herald.ENOTFOUND)
		_, err = e.S.GetSetupToken(e.Ctx, "t3")
		e.wantCode(err, herald.ENOTFOUND)
		e.wantCode(e.S.DeleteUser(e.Ctx, "acme", "sam@example.com"), herald.ENOTFOUND, `user "sam@example.com" of tenant "acme" not found.`)
	})
}
