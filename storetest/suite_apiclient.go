package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
)

// The store keeps secret hashes as opaque strings (package access makes
// and checks them), so these tests store placeholders.

func init() {
	register("APIClients", func(e *env) {
		for _, t := range []string{"acme", "globex"} {
			_, err := e.S.CreateTenant(e.Ctx, t)
			e.must(err)
		}
		sync := &herald.APIClient{Name: "ehr-sync", Tenant: "acme", Role: herald.RoleProducer, SecretHash: "hash-1", SecretID: "id-1"}
		e.must(e.S.CreateAPIClient(e.Ctx, sync))
		if sync.ID == "" || sync.Generation != 1 || !sync.CreatedAt.Equal(Epoch) {
			e.Fatalf("CreateAPIClient filled in %+v, want an ID, generation 1 and the creation time", sync)
		}
		e.must(e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "alpha", Tenant: "acme", Role: herald.RoleViewer, SecretHash: "x"}))

		// Names are unique per tenant: another tenant may use the same one,
		// and a conflict names only the tenant it is in.
		other := &herald.APIClient{Name: "ehr-sync", Tenant: "globex", Role: herald.RoleAdmin, SecretHash: "hash-2", SecretID: "id-2"}
		e.must(e.S.CreateAPIClient(e.Ctx, other))
		if other.ID == sync.ID {
			e.Fatalf("two clients got the same ID %s", other.ID)
		}
		err := e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "ehr-sync", Tenant: "globex", Role: herald.RoleViewer, SecretHash: "y"})
		e.wantCode(err, herald.ECONFLICT, `api client "ehr-sync" already exists in tenant "globex".`)
		if strings.Contains(herald.ErrorMessage(err), "acme") {
			e.Fatalf("a conflict in globex mentions acme: %q", herald.ErrorMessage(err))
		}
		e.must(e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "ehr-sync", Role: herald.RolePlatformAdmin, SecretHash: "hash-p"}))
		err = e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "ehr-sync", Role: herald.RolePlatformAdmin, SecretHash: "y"})
		e.wantCode(err, herald.ECONFLICT, `platform api client "ehr-sync" already exists.`)
		err = e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "lost", Tenant: "nobody", Role: herald.RoleAdmin, SecretHash: "y"})
		e.wantCode(err, herald.ENOTFOUND, `tenant "nobody" not found.`)
		err = e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "Not A Slug", Tenant: "acme", Role: herald.RoleAdmin, SecretHash: "y"})
		e.wantCode(err, herald.EINVALID)

		got, err := e.S.GetAPIClient(e.Ctx, "acme", "ehr-sync")
		e.must(err)
		if got.ID != sync.ID || got.Tenant != "acme" || got.Role != herald.RoleProducer || got.SecretHash != "hash-1" || got.SecretID != "id-1" ||
			got.Generation != 1 || got.Disabled || got.SecretRotatedAt != nil || got.PreviousSecretExpiresAt != nil || !got.CreatedAt.Equal(Epoch) {
			e.Fatalf("GetAPIClient = %+v", got)
		}
		_, err = e.S.GetAPIClient(e.Ctx, "acme", "nobody")
		e.wantCode(err, herald.ENOTFOUND, `api client "nobody" of tenant "acme" not found.`)
		_, err = e.S.GetAPIClient(e.Ctx, "initech", "ehr-sync")
		e.wantCode(err, herald.ENOTFOUND, `tenant "initech" not found.`)
		_, err = e.S.GetAPIClient(e.Ctx, "", "nobody")
		e.wantCode(err, herald.ENOTFOUND, `platform api client "nobody" not found.`)

		list, err := e.S.ListAPIClients(e.Ctx, "acme")
		e.must(err)
		if len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "ehr-sync" || list[1].Tenant != "acme" {
			e.Fatalf("ListAPIClients(acme) = %s", jsonString(list))
		}
		platform, err := e.S.ListAPIClients(e.Ctx, "")
		e.must(err)
		if len(platform) != 1 || platform[0].Name != "ehr-sync" || platform[0].Role != herald.RolePlatformAdmin {
			e.Fatalf("ListAPIClients(\"\") = %s", jsonString(platform))
		}
		_, err = e.S.ListAPIClients(e.Ctx, "nobody")
		e.wantCode(err, herald.ENOTFOUND, `tenant "nobody" not found.`)

		named, err := e.S.APIClientsNamed(e.Ctx, "ehr-sync")
		e.must(err)
		var where []string
		for _, c := range named {
			where = append(where, c.Tenant+":"+c.SecretHash)
		}
		if !slices.Equal(where, []string{":hash-p", "acme:hash-1", "globex:hash-2"}) {
			e.Fatalf("APIClientsNamed(ehr-sync) = %q, want the platform's, acme's and globex's with their hashes", where)
		}
		named, err = e.S.APIClientsNamed(e.Ctx, "nobody")
		e.must(err)
		if len(named) != 0 {
			e.Fatalf("APIClientsNamed(nobody) = %s", jsonString(named))
		}
	})

	register("APIClientRotation", func(e *env) {
		_, err := e.S.CreateTenant(e.Ctx, "acme")
		e.must(err)
		e.must(e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "ehr-sync", Tenant: "acme", Role: herald.RoleProducer, SecretHash: "h1", SecretID: "i1"}))

		// With a grace period, the current secret becomes the previous one.
		t1 := e.Clock.Advance(time.Minute)
		c, err := e.S.RotateAPIClientSecret(e.Ctx, "acme", "ehr-sync", "h2", "i2", time.Hour)
		e.must(err)
		if c.Generation != 2 || c.SecretHash != "h2" || c.SecretID != "i2" || c.PreviousSecretHash != "h1" || c.PreviousSecretID != "i1" ||
			c.SecretRotatedAt == nil || !c.SecretRotatedAt.Equal(t1) || c.PreviousSecretExpiresAt == nil || !c.PreviousSecretExpiresAt.Equal(t1.Add(time.Hour)) {
			e.Fatalf("rotated with an hour's grace: %+v", c)
		}
		got, err := e.S.GetAPIClient(e.Ctx, "acme", "ehr-sync")
		e.must(err)
		if got.Generation != 2 || got.PreviousSecretHash != "h1" || got.PreviousSecretExpiresAt == nil {
			e.Fatalf("GetAPIClient after the rotation = %+v", got)
		}

		// A second rotation during the grace ends the oldest secret at once.
		e.Clock.Advance(10 * time.Minute)
		c, err = e.S.RotateAPIClientSecret(e.Ctx, "acme", "ehr-sync", "h3", "i3", 5*time.Minute)
		e.must(err)
		if c.Generation != 3 || c.PreviousSecretHash != "h2" || c.PreviousSecretID != "i2" {
			e.Fatalf("second rotation: %+v, want h2 as the previous secret", c)
		}
		// The grace ends by time alone.
		e.Clock.Advance(5 * time.Minute)
		got, err = e.S.GetAPIClient(e.Ctx, "acme", "ehr-sync")
		e.must(err)
		if got.PreviousSecretHash != "" || got.PreviousSecretID != "" || got.PreviousSecretExpiresAt != nil {
			e.Fatalf("after its grace the previous secret is still there: %+v", got)
		}

		// Without grace, nothing of the old secret stays.
		c, err = e.S.RotateAPIClientSecret(e.Ctx, "acme", "ehr-sync", "h4", "", 0)
		e.must(err)
		if c.Generation != 4 || c.SecretHash != "h4" || c.SecretID != "" || c.PreviousSecretHash != "" || c.PreviousSecretExpiresAt != nil {
			e.Fatalf("rotated without grace: %+v", c)
		}
		_, err = e.S.RotateAPIClientSecret(e.Ctx, "acme", "nobody", "h", "", 0)
		e.wantCode(err, herald.ENOTFOUND, `api client "nobody" of tenant "acme" not found.`)

		// A rehash replaces the hash it was given and keeps the generation;
		// one that lost a race with a rotation changes nothing.
		ok, err := e.S.RehashAPIClientSecret(e.Ctx, "acme", "ehr-sync", "h4", "h4-stronger")
		e.must(err)
		if !ok {
			e.Fatal("RehashAPIClientSecret of the current hash = false")
		}
		ok, err = e.S.RehashAPIClientSecret(e.Ctx, "acme", "ehr-sync", "h4", "h4-again")
		e.must(err)
		got, err = e.S.GetAPIClient(e.Ctx, "acme", "ehr-sync")
		e.must(err)
		if ok || got.SecretHash != "h4-stronger" || got.Generation != 4 {
			e.Fatalf("after rehashes: ok=%v, %+v", ok, got)
		}
		_, err = e.S.RehashAPIClientSecret(e.Ctx, "acme", "nobody", "a", "b")
		e.wantCode(err, herald.ENOTFOUND)
	})

	register("APIClientDisableAndDelete", func(e *env) {
		_, err := e.S.CreateTenant(e.Ctx, "acme")
		e.must(err)
		c := &herald.APIClient{Name: "ehr-sync", Tenant: "acme", Role: herald.RoleProducer, SecretHash: "h1"}
		e.must(e.S.CreateAPIClient(e.Ctx, c))
		e.must(e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "admin", Role: herald.RolePlatformAdmin, SecretHash: "ha"}))

		got, err := e.S.SetAPIClientDisabled(e.Ctx, "acme", "ehr-sync", true)
		e.must(err)
		if !got.Disabled || got.TokensValidFrom != nil {
			e.Fatalf("disabled: %+v", got)
		}
		enabledAt := e.Clock.Advance(time.Minute)
		got, err = e.S.SetAPIClientDisabled(e.Ctx, "acme", "ehr-sync", false)
		e.must(err)
		if got.Disabled || got.TokensValidFrom == nil || !got.TokensValidFrom.Equal(enabledAt) {
			e.Fatalf("enabled at %s: %+v, want tokens valid from then", enabledAt, got)
		}
		// Enabling an enabled client changes nothing.
		e.Clock.Advance(time.Minute)
		got, err = e.S.SetAPIClientDisabled(e.Ctx, "acme", "ehr-sync", false)
		e.must(err)
		if got.TokensValidFrom == nil || !got.TokensValidFrom.Equal(enabledAt) {
			e.Fatalf("enabled again: %+v, want tokens still valid from %s", got, enabledAt)
		}
		_, err = e.S.SetAPIClientDisabled(e.Ctx, "acme", "nobody", true)
		e.wantCode(err, herald.ENOTFOUND, `api client "nobody" of tenant "acme" not found.`)
		_, err = e.S.SetAPIClientDisabled(e.Ctx, "nobody", "ehr-sync", false)
		e.wantCode(err, herald.ENOTFOUND, `tenant "nobody" not found.`)

		// The states the access layer reads carry no hash.
		_, err = e.S.RotateAPIClientSecret(e.Ctx, "acme", "ehr-sync", "h2", "", time.Hour)
		e.must(err)
		_, err = e.S.SetAPIClientDisabled(e.Ctx, "acme", "ehr-sync", true)
		e.must(err)
		states, err := e.S.APIClientStates(e.Ctx)
		e.must(err)
		byName := map[string]*herald.APIClient{}
		for _, s := range states {
			byName[s.Tenant+"/"+s.Name] = s
			if s.SecretHash != "" || s.PreviousSecretHash != "" {
				e.Fatalf("APIClientStates carries a hash: %+v", s)
			}
		}
		s := byName["acme/ehr-sync"]
		if len(states) != 2 || s == nil || s.ID != c.ID || !s.Disabled || s.Generation != 2 || s.PreviousSecretExpiresAt == nil ||
			s.TokensValidFrom == nil || byName["/admin"] == nil {
			e.Fatalf("APIClientStates = %s", jsonString(states))
		}

		// Deleted is gone; a new client of the name is another client.
		e.must(e.S.DeleteAPIClient(e.Ctx, "acme", "ehr-sync"))
		_, err = e.S.GetAPIClient(e.Ctx, "acme", "ehr-sync")
		e.wantCode(err, herald.ENOTFOUND, `api client "ehr-sync" of tenant "acme" not found.`)
		err = e.S.DeleteAPIClient(e.Ctx, "acme", "ehr-sync")
		e.wantCode(err, herald.ENOTFOUND, `api client "ehr-sync" of tenant "acme" not found.`)
		err = e.S.DeleteAPIClient(e.Ctx, "nobody", "ehr-sync")
		e.wantCode(err, herald.ENOTFOUND, `tenant "nobody" not found.`)
		again := &herald.APIClient{Name: "ehr-sync", Tenant: "acme", Role: herald.RoleProducer, SecretHash: "h9"}
		e.must(e.S.CreateAPIClient(e.Ctx, again))
		if again.ID == c.ID || again.Generation != 1 {
			e.Fatalf("a client made again under a deleted one's name: %+v (the deleted one had ID %s)", again, c.ID)
		}
	})

	register("RevokedTokens", func(e *env) {
		e.must(e.S.RevokeToken(e.Ctx, "tok-a", Epoch.Add(time.Hour)))
		e.must(e.S.RevokeToken(e.Ctx, "tok-b", Epoch.Add(10*time.Minute)))
		e.must(e.S.RevokeToken(e.Ctx, "tok-a", Epoch.Add(time.Hour))) // twice is no error
		ids, err := e.S.RevokedTokens(e.Ctx, Epoch)
		e.must(err)
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"tok-a", "tok-b"}) {
			e.Fatalf("RevokedTokens = %q", ids)
		}
		ids, err = e.S.RevokedTokens(e.Ctx, Epoch.Add(10*time.Minute))
		e.must(err)
		if !slices.Equal(ids, []string{"tok-a"}) {
			e.Fatalf("RevokedTokens once tok-b expired = %q, want tok-a", ids)
		}
		n, err := e.S.PurgeAuthRecords(e.Ctx, Epoch.Add(10*time.Minute), Epoch)
		e.must(err)
		if n != 1 {
			e.Fatalf("PurgeAuthRecords deleted %d rows, want tok-b's", n)
		}
		ids, err = e.S.RevokedTokens(e.Ctx, Epoch)
		e.must(err)
		if !slices.Equal(ids, []string{"tok-a"}) {
			e.Fatalf("RevokedTokens after the purge = %q, want tok-a", ids)
		}
	})

	register("AuthRequestCounts", func(e *env) {
		w1, w2 := Epoch, Epoch.Add(5*time.Minute)
		counts := func(w time.Time, keys ...string) []int {
			e.Helper()
			n, err := e.S.CountAuthRequests(e.Ctx, w, keys...)
			e.must(err)
			return n
		}
		if got := counts(w1, "client:x", "address:127.0.0.1"); !slices.Equal(got, []int{1, 1}) {
			e.Fatalf("first counts = %v", got)
		}
		if got := counts(w1, "client:x", "address:127.0.0.1"); !slices.Equal(got, []int{2, 2}) {
			e.Fatalf("second counts = %v", got)
		}
		if got := counts(w1, "client:y", "address:127.0.0.1"); !slices.Equal(got, []int{1, 3}) {
			e.Fatalf("another client from the same address = %v", got)
		}
		if got := counts(w2, "client:x", "address:127.0.0.1"); !slices.Equal(got, []int{1, 1}) {
			e.Fatalf("the next window starts again: %v", got)
		}
		if got := counts(w2, "client:x", "client:x"); !slices.Equal(got, []int{2, 2}) {
			e.Fatalf("a key given twice counts once: %v", got)
		}

		// Counts from many connections at once (many nodes) add up.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var seen []int
		for g := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					n, err := e.S.CountAuthRequests(e.Ctx, w2, "address:10.0.0.1", fmt.Sprintf("client:g%d", g))
					if err != nil {
						e.Error(err)
						return
					}
					mu.Lock()
					seen = append(seen, n[0])
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		slices.Sort(seen)
		for i, n := range seen {
			if n != i+1 {
				e.Fatalf("concurrent counts returned %v, want each of 1..50 once", seen)
			}
		}

		// Purging drops the windows before the one given, not later ones.
		_, err := e.S.PurgeAuthRecords(e.Ctx, w2, w2)
		e.must(err)
		if got := counts(w1, "client:x"); !slices.Equal(got, []int{1}) {
			e.Fatalf("a purged window counts from %v, want 1", got)
		}
		if got := counts(w2, "client:x"); !slices.Equal(got, []int{3}) {
			e.Fatalf("the kept window counts %v, want 3", got)
		}
	})
}
