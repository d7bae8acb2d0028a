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

	register("Ping", func(e *env) {
		e.must(e.S.Ping(e.Ctx))
	})
}
