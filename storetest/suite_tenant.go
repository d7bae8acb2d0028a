package storetest

import (
	"github.com/heraldhooks/herald"
)

func init() {
	register("Tenants", func(e *env) {
		for _, n := range []string{"globex", "acme"} {
			tn, err := e.S.CreateTenant(e.Ctx, n)
			e.must(err)
			if tn.Name != n || !tn.CreatedAt.Equal(Epoch) {
				e.Fatalf("CreateTenant = %+v", tn)
			}
		}
		_, err := e.S.CreateTenant(e.Ctx, "acme")
		e.wantCode(err, herald.ECONFLICT, `tenant "acme" already exists.`)
		_, err = e.S.CreateTenant(e.Ctx, "Not A Slug")
		e.wantCode(err, herald.EINVALID)
		list, err := e.S.ListTenants(e.Ctx)
		e.must(err)
		if len(list) != 2 || list[0].Name != "acme" || list[1].Name != "globex" {
			e.Fatalf("ListTenants = %s, want acme, globex", jsonString(list))
		}
		tn, err := e.S.GetTenant(e.Ctx, "acme")
		e.must(err)
		if tn.Name != "acme" || !tn.CreatedAt.Equal(Epoch) {
			e.Fatalf("GetTenant = %+v", tn)
		}
		_, err = e.S.GetTenant(e.Ctx, "initech")
		e.wantCode(err, herald.ENOTFOUND, `tenant "initech" not found.`)
	})

	register("Instances", func(e *env) {
		_, err := e.S.CreateInstance(e.Ctx, "acme", "live")
		e.wantCode(err, herald.ENOTFOUND, `tenant "acme" not found.`)
		_, err = e.S.CreateTenant(e.Ctx, "acme")
		e.must(err)
		for _, n := range []string{"sandbox", "live"} {
			_, err := e.S.CreateInstance(e.Ctx, "acme", n)
			e.must(err)
		}
		_, err = e.S.CreateInstance(e.Ctx, "acme", "live")
		e.wantCode(err, herald.ECONFLICT, `instance "live" of tenant "acme" already exists.`)
		_, err = e.S.CreateInstance(e.Ctx, "acme", "-live")
		e.wantCode(err, herald.EINVALID)
		list, err := e.S.ListInstances(e.Ctx, "acme")
		e.must(err)
		if len(list) != 2 || list[0].Name != "live" || list[1].Name != "sandbox" || list[0].Tenant != "acme" {
			e.Fatalf("ListInstances = %s", jsonString(list))
		}
		_, err = e.S.ListInstances(e.Ctx, "nobody")
		e.wantCode(err, herald.ENOTFOUND, `tenant "nobody" not found.`)
		inst, err := e.S.GetInstance(e.Ctx, "acme", "live")
		e.must(err)
		if inst.Name != "live" || inst.Tenant != "acme" || !inst.CreatedAt.Equal(Epoch) {
			e.Fatalf("GetInstance = %+v", inst)
		}
		_, err = e.S.GetInstance(e.Ctx, "acme", "prod")
		e.wantCode(err, herald.ENOTFOUND, `instance "prod" of tenant "acme" not found.`)
		_, err = e.S.GetInstance(e.Ctx, "nobody", "prod")
		e.wantCode(err, herald.ENOTFOUND, `tenant "nobody" not found.`)
	})

	register("APIClients", func(e *env) {
		_, err := e.S.CreateTenant(e.Ctx, "acme")
		e.must(err)
		sync := &herald.APIClient{Name: "ehr-sync", Tenant: "acme", Role: herald.RoleProducer, SecretHash: herald.HashSecret("s1")}
		e.must(e.S.CreateAPIClient(e.Ctx, sync))
		e.must(e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "alpha", Tenant: "acme", Role: herald.RoleViewer, SecretHash: "x"}))
		err = e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "ehr-sync", Role: herald.RoleAdmin, SecretHash: "y"})
		e.wantCode(err, herald.ECONFLICT, `api client "ehr-sync" already exists.`)
		err = e.S.CreateAPIClient(e.Ctx, &herald.APIClient{Name: "lost", Tenant: "nobody", Role: herald.RoleAdmin, SecretHash: "y"})
		e.wantCode(err, herald.ENOTFOUND, `tenant "nobody" not found.`)

		got, err := e.S.GetAPIClient(e.Ctx, "ehr-sync")
		e.must(err)
		if got.Tenant != "acme" || got.Role != herald.RoleProducer || !herald.SecretMatches("s1", got.SecretHash) || !got.CreatedAt.Equal(Epoch) {
			e.Fatalf("GetAPIClient = %+v", got)
		}
		_, err = e.S.GetAPIClient(e.Ctx, "nobody")
		e.wantCode(err, herald.ENOTFOUND, `api client "nobody" not found.`)

		// The bootstrap admin is upserted at every start with the secret of
		// the day.
		e.must(e.S.UpsertAPIClient(e.Ctx, &herald.APIClient{Name: "admin", Role: herald.RolePlatformAdmin, SecretHash: herald.HashSecret("a1")}))
		e.Clock.Advance(1000)
		e.must(e.S.UpsertAPIClient(e.Ctx, &herald.APIClient{Name: "admin", Role: herald.RolePlatformAdmin, SecretHash: herald.HashSecret("a2")}))
		admin, err := e.S.GetAPIClient(e.Ctx, "admin")
		e.must(err)
		if !herald.SecretMatches("a2", admin.SecretHash) || admin.Tenant != "" || admin.Role != herald.RolePlatformAdmin {
			e.Fatalf("upserted admin = %+v, want the second secret", admin)
		}

		list, err := e.S.ListAPIClients(e.Ctx, "acme")
		e.must(err)
		if len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "ehr-sync" {
			e.Fatalf("ListAPIClients(acme) = %s", jsonString(list))
		}
		platform, err := e.S.ListAPIClients(e.Ctx, "")
		e.must(err)
		if len(platform) != 1 || platform[0].Name != "admin" {
			e.Fatalf("ListAPIClients(\"\") = %s", jsonString(platform))
		}
		_, err = e.S.ListAPIClients(e.Ctx, "nobody")
		e.wantCode(err, herald.ENOTFOUND)
	})

	register("Ping", func(e *env) {
		e.must(e.S.Ping(e.Ctx))
	})
}
