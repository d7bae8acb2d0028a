package httpapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/heraldhooks/herald"
)

// FuzzDesignerWebhook: the bodies of POST and PATCH
// .../designer/webhooks. A refused body is a 400 naming the field at fault
// when there is one (name, title, triggers[i]...). An accepted webhook
// written back reads the same; each of its triggers selects the events it
// names (every subtype of its entity, or its one subtype, at least one)
// and nothing of another entity. A PATCH merged into it as the store merges it is
// refused or valid the same way.
func FuzzDesignerWebhook(f *testing.F) {
	for _, s := range [][2]string{
		{`{"name":"wh-patient-sync","title":"Patient sync","triggers":[{"eventSubtype":"PATIENT_CREATED"},{"eventEntity":"CDT"}]}`, `{"title":"Patients"}`},
		{`{"name":"a","title":" x ","triggers":[{"eventEntity":"ASSESSMENT"}]}`, `{"triggers":[{"eventSubtype":"CDT_DELETED"}]}`},
		{`{"name":"Wh","title":"t","triggers":[{"eventEntity":"CDT"}]}`, `{"triggers":[]}`},
		{`{"name":"wh","title":"","triggers":[{"eventEntity":"CDT"}]}`, `{"title":"  "}`},
		{`{"name":"wh","title":"t","triggers":[]}`, `{"triggers":null}`},
		{`{"name":"wh","title":"t","triggers":[{}]}`, `{"triggers":[{"eventEntity":"CDT","eventSubtype":"CDT_CREATED"}]}`},
		{`{"name":"wh","title":"t","triggers":[{"eventEntity":"CDT","eventSubtype":"PATIENT_CREATED"}]}`, `{"triggers":[{"eventSubtype":"NOPE"}]}`},
		{`{"name":"wh","title":"t","triggers":[{"eventSubtype":"NOPE"}]}`, `{"titel":"x"}`},
		{`{"name":"wh","title":"t","triggers":[{"eventEntity":"patient"}]}`, `{"title":7}`},
		{`{"name":"wh","title":"t","triggers":{"eventEntity":"CDT"}}`, `[]`},
		{`{"name":"-wh","title":"t","triggers":[{"eventEntity":"CDT"}]}`, `{}`},
		{`{"name":"wh","title":"t","trigger":[{"eventEntity":"CDT"}]}`, ``},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, body, patch []byte) {
		var req designerWebhookRequest
		err := unmarshalStrict(body, &req, "")
		var wh *herald.DesignerWebhook
		if err == nil {
			wh = &herald.DesignerWebhook{Name: req.Name, Title: req.Title, Triggers: req.Triggers}
			err = wh.Validate()
		}
		if err != nil {
			he := wantRefusal(t, err, []string{herald.EINVALID})
			if he.Field != "" && !he.UnknownField && !slices.ContainsFunc([]string{"name", "title", "triggers"}, func(p string) bool {
				return he.Field == p || len(he.Field) > len(p) && he.Field[:len(p)+1] == p+"["
			}) {
				t.Fatalf("body %s refused naming %q", body, he.Field)
			}
			return
		}

		out, err := json.Marshal(designerWebhookRequest{Name: wh.Name, Title: wh.Title, Triggers: wh.Triggers})
		if err != nil {
			t.Fatal(err)
		}
		var back designerWebhookRequest
		if err := unmarshalStrict(out, &back, ""); err != nil || !reflect.DeepEqual(back, req) {
			t.Fatalf("body %s written back as %s reads %+v, %v", body, out, back, err)
		}

		for i, tr := range wh.Triggers {
			entity := tr.EventEntity
			if tr.EventSubtype != "" {
				entity, _ = herald.Catalog.EntityOf(tr.EventSubtype)
			}
			selected := 0
			for _, e := range herald.Catalog.Entities {
				for _, sub := range e.Subtypes {
					ev := &herald.Event{Entity: e.Entity, Subtype: sub}
					want := e.Entity == entity && (tr.EventSubtype == "" || tr.EventSubtype == sub)
					if tr.Matches(ev) != want {
						t.Fatalf("triggers[%d] %+v matches %s/%s: %v, want %v", i, tr, e.Entity, sub, !want, want)
					}
					if want {
						selected++
					}
				}
			}
			if selected == 0 {
				t.Fatalf("triggers[%d] %+v was accepted and selects no event of the catalog", i, tr)
			}
		}

		var upd herald.DesignerWebhookUpdate
		err = unmarshalStrict(patch, &upd, "")
		if err == nil {
			// As the store merges a PATCH (sqlstore UpdateDesignerWebhook).
			if upd.Title != nil {
				wh.Title = *upd.Title
			}
			if upd.Triggers != nil {
				wh.Triggers = *upd.Triggers
			}
			err = wh.Validate()
		}
		if err != nil {
			he := wantRefusal(t, err, []string{herald.EINVALID})
			if he.Field == "name" {
				t.Fatalf("PATCH %s refused naming the name it cannot change", patch)
			}
		}
	})
}
