package storetest

import (
	"slices"
	"time"

	"github.com/heraldhooks/herald"
)

func init() {
	register("DesignerDraft", func(e *env) {
		err := e.S.CreateDesignerWebhook(e.Ctx, "acme", &herald.DesignerWebhook{Name: "a", Title: "A", Triggers: []herald.Trigger{entity("CDT")}})
		e.wantCode(err, herald.ENOTFOUND, `tenant "acme" not found.`)
		_, err = e.S.CreateTenant(e.Ctx, "acme")
		e.must(err)
		err = e.S.CreateDesignerWebhook(e.Ctx, "acme", &herald.DesignerWebhook{Name: "Bad Name", Title: "A", Triggers: []herald.Trigger{entity("CDT")}})
		e.wantCode(err, herald.EINVALID)

		w := &herald.DesignerWebhook{Name: "wh-patient-sync", Title: "Patient sync", Triggers: []herald.Trigger{subtype("PATIENT_CREATED"), entity("CDT")}}
		e.must(e.S.CreateDesignerWebhook(e.Ctx, "acme", w))
		if !w.CreatedAt.Equal(Epoch) || !w.UpdatedAt.Equal(Epoch) {
			e.Errorf("CreateDesignerWebhook did not set times: %+v", w)
		}
		e.must(e.S.CreateDesignerWebhook(e.Ctx, "acme", &herald.DesignerWebhook{Name: "audit", Title: "Audit", Triggers: []herald.Trigger{entity("TASK")}}))
		err = e.S.CreateDesignerWebhook(e.Ctx, "acme", &herald.DesignerWebhook{Name: "audit", Title: "Again", Triggers: []herald.Trigger{entity("TASK")}})
		e.wantCode(err, herald.ECONFLICT, `"audit" already exists`)

		got, err := e.S.GetDesignerWebhook(e.Ctx, "acme", "wh-patient-sync")
		e.must(err)
		if got.Title != "Patient sync" || !slices.Equal(got.Triggers, w.Triggers) {
			e.Errorf("GetDesignerWebhook = %s", jsonString(got))
		}
		_, err = e.S.GetDesignerWebhook(e.Ctx, "acme", "nope")
		e.wantCode(err, herald.ENOTFOUND, `"nope" not found`)
		list, err := e.S.ListDesignerWebhooks(e.Ctx, "acme")
		e.must(err)
		if len(list) != 2 || list[0].Name != "audit" || list[1].Name != "wh-patient-sync" {
			e.Errorf("ListDesignerWebhooks = %s", jsonString(list))
		}

		e.Clock.Advance(time.Minute)
		upd, err := e.S.UpdateDesignerWebhook(e.Ctx, "acme", "audit", herald.DesignerWebhookUpdate{Title: ptr("Audit log")})
		e.must(err)
		if upd.Title != "Audit log" || !slices.Equal(upd.Triggers, []herald.Trigger{entity("TASK")}) || !upd.UpdatedAt.Equal(Epoch.Add(time.Minute)) {
			e.Errorf("UpdateDesignerWebhook merged to %s", jsonString(upd))
		}
		_, err = e.S.UpdateDesignerWebhook(e.Ctx, "acme", "audit", herald.DesignerWebhookUpdate{Triggers: &[]herald.Trigger{}})
		e.wantCode(err, herald.EINVALID)
		_, err = e.S.UpdateDesignerWebhook(e.Ctx, "acme", "nope", herald.DesignerWebhookUpdate{Title: ptr("x")})
		e.wantCode(err, herald.ENOTFOUND)

		draft, err := e.S.Draft(e.Ctx, "acme")
		e.must(err)
		if len(draft) != 2 || draft[0].Action != "created" || draft[0].Name != "audit" || draft[1].Name != "wh-patient-sync" || draft[0].Webhook == nil {
			e.Errorf("Draft before any publish = %s", jsonString(draft))
		}

		e.must(e.S.DeleteDesignerWebhook(e.Ctx, "acme", "audit"))
		e.wantCode(e.S.DeleteDesignerWebhook(e.Ctx, "acme", "audit"), herald.ENOTFOUND)
		_, err = e.S.Draft(e.Ctx, "nobody")
		e.wantCode(err, herald.ENOTFOUND)
	})

	register("DesignerPublish", func(e *env) {
		_, err := e.S.CreateTenant(e.Ctx, "acme")
		e.must(err)
		_, err = e.S.Publish(e.Ctx, "acme", "empty", "me")
		e.wantCode(err, herald.ECONFLICT, "nothing to publish")
		_, err = e.S.CreateInstance(e.Ctx, "acme", "live")
		e.must(err)

		for _, n := range []string{"keep", "change", "drop"} {
			e.must(e.S.CreateDesignerWebhook(e.Ctx, "acme", &herald.DesignerWebhook{Name: n, Title: "T " + n, Triggers: []herald.Trigger{entity("PATIENT")}}))
		}
		v1, err := e.S.Publish(e.Ctx, "acme", "first", "alice")
		e.must(err)
		if v1.Version != 1 || v1.Comment != "first" || v1.PublishedBy != "alice" || !v1.PublishedAt.Equal(Epoch) {
			e.Errorf("Publish = %+v", v1)
		}
		_, err = e.S.Publish(e.Ctx, "acme", "again", "alice")
		e.wantCode(err, herald.ECONFLICT, "nothing to publish: the draft has no changes since version 1")
		if d, err := e.S.Draft(e.Ctx, "acme"); err != nil || len(d) != 0 {
			e.Errorf("Draft after publish = %v, %v; want no changes", d, err)
		}

		hooks, err := e.S.ListWebhooks(e.Ctx, "acme", "live")
		e.must(err)
		if len(hooks) != 3 || hooks[0].Name != "change" || hooks[1].Name != "drop" || hooks[2].Name != "keep" {
			e.Fatalf("ListWebhooks after v1 = %s", jsonString(hooks))
		}
		for _, w := range hooks {
			if w.Active || w.URL != "" || w.Version != 1 || w.Title != "T "+w.Name || w.TimeoutSeconds != herald.DefaultTimeoutSeconds ||
				w.Payload.Format != herald.FormatWelkin || !slices.Equal(w.Payload.PredefinedFields, herald.DefaultPredefinedFields) ||
				len(w.Payload.CustomFields) != 0 || w.Tenant != "acme" || w.Instance != "live" {
				e.Errorf("new webhook %s", jsonString(w))
			}
			secrets, err := e.S.WebhookSecrets(e.Ctx, "acme", "live", w.Name)
			e.must(err)
			if len(secrets) != 1 || len(secrets[0].Secret) < 20 || secrets[0].ExpiresAt != nil {
				e.Errorf("secrets of %s = %+v", w.Name, secrets)
			}
		}
		// An instance created later gets the published webhooks too, each
		// with a secret of its own.
		_, err = e.S.CreateInstance(e.Ctx, "acme", "sandbox")
		e.must(err)
		sb, err := e.S.ListWebhooks(e.Ctx, "acme", "sandbox")
		e.must(err)
		if len(sb) != 3 || sb[0].Version != 1 {
			e.Errorf("sandbox webhooks = %s", jsonString(sb))
		}
		s1, _ := e.S.WebhookSecrets(e.Ctx, "acme", "live", "keep")
		s2, _ := e.S.WebhookSecrets(e.Ctx, "acme", "sandbox", "keep")
		if len(s1) == 0 || len(s2) == 0 || s1[0].Secret == s2[0].Secret {
			e.Errorf("instances share a secret: %v %v", s1, s2)
		}

		// An open delivery of the webhook about to be dropped.
		url := "https://example.com/drop"
		_, err = e.S.UpdateWebhook(e.Ctx, "acme", "live", "drop", herald.WebhookUpdate{URL: &url})
		e.must(err)
		_, err = e.S.ActivateWebhook(e.Ctx, "acme", "live", "drop")
		e.must(err)
		e.create(event("acme", "live", "PATIENT_CREATED"))

		e.Clock.Advance(time.Hour)
		_, err = e.S.UpdateDesignerWebhook(e.Ctx, "acme", "change", herald.DesignerWebhookUpdate{Title: ptr("Changed"), Triggers: &[]herald.Trigger{entity("CDT")}})
		e.must(err)
		e.must(e.S.DeleteDesignerWebhook(e.Ctx, "acme", "drop"))
		e.must(e.S.CreateDesignerWebhook(e.Ctx, "acme", &herald.DesignerWebhook{Name: "fresh", Title: "Fresh", Triggers: []herald.Trigger{entity("TASK")}}))
		draft, err := e.S.Draft(e.Ctx, "acme")
		e.must(err)
		var got []string
		for _, c := range draft {
			got = append(got, c.Action+" "+c.Name)
			if (c.Webhook == nil) != (c.Action == "deleted") {
				e.Errorf("change %s: webhook %v", c.Action, c.Webhook)
			}
		}
		if !slices.Equal(got, []string{"updated change", "deleted drop", "created fresh"}) {
			e.Errorf("Draft = %v", got)
		}
		v2, err := e.S.Publish(e.Ctx, "acme", "", "bob")
		e.must(err)
		if v2.Version != 2 {
			e.Errorf("second publish is version %d", v2.Version)
		}
		for _, inst := range []string{"live", "sandbox"} {
			hooks, err := e.S.ListWebhooks(e.Ctx, "acme", inst)
			e.must(err)
			var names []string
			for _, w := range hooks {
				names = append(names, w.Name)
				switch w.Name {
				case "change":
					if w.Title != "Changed" || w.Version != 2 || !slices.Equal(w.Triggers, []herald.Trigger{entity("CDT")}) {
						e.Errorf("changed webhook %s", jsonString(w))
					}
				case "keep":
					if w.Version != 1 {
						e.Errorf("unchanged webhook got version %d", w.Version)
					}
				case "fresh":
					if w.Version != 2 || w.Active {
						e.Errorf("new webhook %s", jsonString(w))
					}
				}
			}
			if !slices.Equal(names, []string{"change", "fresh", "keep"}) {
				e.Errorf("%s webhooks after v2 = %v", inst, names)
			}
		}
		_, err = e.S.GetWebhook(e.Ctx, "acme", "live", "drop")
		e.wantCode(err, herald.ENOTFOUND)
		ds := e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live", Webhook: "drop"})
		if len(ds) != 1 || ds[0].Status != herald.StatusCancelled || ds[0].NextAttemptAt != nil {
			e.Errorf("delivery of the dropped webhook = %s, want CANCELLED", jsonString(ds))
		}
		// A removed webhook no longer matches events.
		res := e.create(event("acme", "live", "PATIENT_CREATED"))
		if res[0].Deliveries != 0 {
			e.Errorf("event matched %d webhooks; the only active one was removed", res[0].Deliveries)
		}

		versions, err := e.S.ListVersions(e.Ctx, "acme")
		e.must(err)
		if len(versions) != 2 || versions[0].Version != 2 || versions[1].Version != 1 || versions[1].Comment != "first" ||
			versions[0].PublishedBy != "bob" || len(versions[0].Webhooks) != 0 {
			e.Errorf("ListVersions = %s", jsonString(versions))
		}
		_, err = e.S.ListVersions(e.Ctx, "nobody")
		e.wantCode(err, herald.ENOTFOUND)

		// Publishing the same name again after removal makes a new webhook.
		e.must(e.S.CreateDesignerWebhook(e.Ctx, "acme", &herald.DesignerWebhook{Name: "drop", Title: "Back", Triggers: []herald.Trigger{entity("PATIENT")}}))
		_, err = e.S.Publish(e.Ctx, "acme", "back", "bob")
		e.must(err)
		back, err := e.S.GetWebhook(e.Ctx, "acme", "live", "drop")
		e.must(err)
		if back.Active || back.URL != "" || back.Title != "Back" || back.Version != 3 {
			e.Errorf("re-published webhook = %s", jsonString(back))
		}
		if ds := e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live", Webhook: "drop"}); len(ds) != 1 {
			e.Errorf("re-published webhook's history: %d deliveries", len(ds))
		}
	})
}
