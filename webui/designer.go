package webui

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/heraldhooks/herald"
)

type designerRow struct {
	Webhook *herald.DesignerWebhook
	Change  string // "created", "updated" or "" when published as is
}

type designerData struct {
	Rows    []designerRow
	Deleted []string // published, deleted in the draft
	Pending int
}

func (u *ui) designer(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	list, err := u.store.ListDesignerWebhooks(r.Context(), tenant)
	if err != nil {
		return err
	}
	changes, err := u.store.Draft(r.Context(), tenant)
	if err != nil {
		return err
	}
	action := map[string]string{}
	d := designerData{Pending: len(changes)}
	for _, c := range changes {
		action[c.Name] = c.Action
		if c.Action == "deleted" {
			d.Deleted = append(d.Deleted, c.Name)
		}
	}
	for _, wh := range list {
		d.Rows = append(d.Rows, designerRow{Webhook: wh, Change: action[wh.Name]})
	}
	return u.render(w, r, http.StatusOK, "designer", "Designer", d)
}

// catalogGroup is one entity of the trigger picker.
type catalogGroup struct {
	Entity   string
	Subtypes []string
}

type designerForm struct {
	New      bool
	Name     string
	Title    string
	Selected []string // "entity:X" and "subtype:Y"
	Catalog  []catalogGroup
	Field    string // the field at fault
	Error    string
}

func newDesignerForm() designerForm {
	f := designerForm{}
	for _, e := range herald.Catalog.Entities {
		f.Catalog = append(f.Catalog, catalogGroup{Entity: e.Entity, Subtypes: e.Subtypes})
	}
	return f
}

func formTriggers(selected []string) []herald.Trigger {
	var out []herald.Trigger
	for _, s := range selected {
		kind, v, _ := strings.Cut(s, ":")
		switch kind {
		case "entity":
			out = append(out, herald.Trigger{EventEntity: v})
		case "subtype":
			out = append(out, herald.Trigger{EventSubtype: v})
		}
	}
	return out
}

func selectedOf(ts []herald.Trigger) []string {
	var out []string
	for _, t := range ts {
		if t.EventSubtype != "" {
			out = append(out, "subtype:"+t.EventSubtype)
		} else {
			out = append(out, "entity:"+t.EventEntity)
		}
	}
	return out
}

// formError fills the form's error from a validation error and returns
// the status to answer with; other errors are returned for the error page.
func formError(err error, field, msg *string) (int, error) {
	var he *herald.Error
	if !errors.As(err, &he) {
		return 0, err
	}
	status, ok := statusOf[he.Code]
	if !ok || status >= 500 || he.Code == herald.EFORBIDDEN || he.Code == herald.ENOTFOUND {
		return 0, err
	}
	*field, *msg = he.Field, he.Message
	if *field == "" && he.Code == herald.ECONFLICT {
		*field = "name"
	}
	return status, nil
}

func (u *ui) designerNew(w http.ResponseWriter, r *http.Request) error {
	if _, err := u.store.GetTenant(r.Context(), r.PathValue("tenant")); err != nil {
		return err
	}
	f := newDesignerForm()
	f.New = true
	return u.render(w, r, http.StatusOK, "designer_form", "New webhook", f)
}

func (u *ui) designerCreate(w http.ResponseWriter, r *http.Request) error {
	f := newDesignerForm()
	f.New = true
	f.Name = strings.TrimSpace(r.PostForm.Get("name"))
	f.Title = strings.TrimSpace(r.PostForm.Get("title"))
	f.Selected = r.PostForm["trigger"]
	wh := &herald.DesignerWebhook{Name: f.Name, Title: f.Title, Triggers: formTriggers(f.Selected)}
	err := wh.Validate()
	if err == nil {
		err = u.store.CreateDesignerWebhook(r.Context(), r.PathValue("tenant"), wh)
	}
	if err != nil {
		status, err := formError(err, &f.Field, &f.Error)
		if err != nil {
			return err
		}
		return u.render(w, r, status, "designer_form", "New webhook", f)
	}
	http.Redirect(w, r, tenantPath(r)+"/designer?done=created", http.StatusSeeOther)
	return nil
}

func (u *ui) designerEdit(w http.ResponseWriter, r *http.Request) error {
	wh, err := u.store.GetDesignerWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("name"))
	if err != nil {
		return err
	}
	f := newDesignerForm()
	f.Name, f.Title, f.Selected = wh.Name, wh.Title, selectedOf(wh.Triggers)
	return u.render(w, r, http.StatusOK, "designer_form", wh.Title, f)
}

func (u *ui) designerUpdate(w http.ResponseWriter, r *http.Request) error {
	f := newDesignerForm()
	f.Name = r.PathValue("name")
	f.Title = strings.TrimSpace(r.PostForm.Get("title"))
	f.Selected = r.PostForm["trigger"]
	triggers := formTriggers(f.Selected)
	if triggers == nil {
		triggers = []herald.Trigger{} // none chosen: let validation say so
	}
	before, err := u.store.GetDesignerWebhook(r.Context(), r.PathValue("tenant"), f.Name)
	if err != nil {
		return err
	}
	after, err := u.store.UpdateDesignerWebhook(r.Context(), r.PathValue("tenant"), f.Name,
		herald.DesignerWebhookUpdate{Title: &f.Title, Triggers: &triggers})
	if err == nil {
		diff := map[string]any{}
		herald.AddChange(diff, "title", before.Title, after.Title)
		herald.AddChange(diff, "triggers", before.Triggers, after.Triggers)
		noteAudit(r, "", diff)
	}
	if err != nil {
		status, err := formError(err, &f.Field, &f.Error)
		if err != nil {
			return err
		}
		return u.render(w, r, status, "designer_form", f.Name, f)
	}
	http.Redirect(w, r, tenantPath(r)+"/designer?done=updated", http.StatusSeeOther)
	return nil
}

func (u *ui) designerDelete(w http.ResponseWriter, r *http.Request) error {
	if err := u.store.DeleteDesignerWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("name")); err != nil {
		return err
	}
	http.Redirect(w, r, tenantPath(r)+"/designer?done=deleted", http.StatusSeeOther)
	return nil
}

// changeView is one pending change with the published state beside it.
type changeView struct {
	Action      string
	Name        string
	OldTitle    string
	NewTitle    string
	Added       []herald.Trigger // triggers in the draft, not published
	Removed     []herald.Trigger // triggers published, not in the draft
	Kept        []herald.Trigger
	TitleChange bool
}

type changesData struct {
	Changes   []changeView
	Published *herald.DesignerVersion
	Comment   string
	Error     string
}

func (u *ui) changesData(r *http.Request) (*changesData, error) {
	tenant := r.PathValue("tenant")
	changes, err := u.store.Draft(r.Context(), tenant)
	if err != nil {
		return nil, err
	}
	d := &changesData{}
	published := map[string]herald.DesignerWebhook{}
	v, err := u.store.PublishedVersion(r.Context(), tenant)
	if err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
		return nil, err
	}
	if v != nil {
		d.Published = v
		for _, wh := range v.Webhooks {
			published[wh.Name] = wh
		}
	}
	for _, c := range changes {
		cv := changeView{Action: c.Action, Name: c.Name}
		old, had := published[c.Name]
		var draft []herald.Trigger
		if c.Webhook != nil {
			cv.NewTitle, draft = c.Webhook.Title, c.Webhook.Triggers
		}
		if had {
			cv.OldTitle = old.Title
		}
		cv.TitleChange = had && c.Webhook != nil && old.Title != c.Webhook.Title
		for _, t := range draft {
			if had && slices.Contains(old.Triggers, t) {
				cv.Kept = append(cv.Kept, t)
			} else {
				cv.Added = append(cv.Added, t)
			}
		}
		for _, t := range old.Triggers {
			if !slices.Contains(draft, t) {
				cv.Removed = append(cv.Removed, t)
			}
		}
		d.Changes = append(d.Changes, cv)
	}
	return d, nil
}

func (u *ui) changes(w http.ResponseWriter, r *http.Request) error {
	d, err := u.changesData(r)
	if err != nil {
		return err
	}
	return u.render(w, r, http.StatusOK, "changes", "Pending changes", d)
}

func (u *ui) publish(w http.ResponseWriter, r *http.Request) error {
	comment := strings.TrimSpace(r.PostForm.Get("comment"))
	var err error
	if len(comment) > 1000 {
		err = herald.FieldErrorf("comment", "The comment is %d characters long; the limit is 1000.", len(comment))
	} else {
		var v *herald.DesignerVersion
		v, err = u.store.Publish(r.Context(), r.PathValue("tenant"), comment, state(r).principal.Client)
		if err == nil {
			noteAudit(r, "designer version "+strconv.Itoa(v.Version), map[string]any{"comment": comment})
		}
	}
	if err != nil {
		var field, msg string
		status, err := formError(err, &field, &msg)
		if err != nil {
			return err
		}
		d, derr := u.changesData(r)
		if derr != nil {
			return derr
		}
		d.Comment, d.Error = comment, msg
		return u.render(w, r, status, "changes", "Pending changes", d)
	}
	http.Redirect(w, r, tenantPath(r)+"/designer/versions?done=published", http.StatusSeeOther)
	return nil
}

func (u *ui) versions(w http.ResponseWriter, r *http.Request) error {
	list, err := u.store.ListVersions(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return u.render(w, r, http.StatusOK, "versions", "Version history", list)
}
