package herald

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"time"
)

// The audit trail records who did what, when, from where, and to what:
// every change and every security event, and every read of health data
// (an event's or a delivery's detail). It is append-only and chained: each
// entry carries the SHA-256 of the entry before it and of its own content,
// so an entry changed or removed later breaks the chain at that entry, and
// VerifyAuditChain names it. Rewriting the whole chain from some entry on
// would need every later hash to be recomputed; the chain head (sequence
// and hash) is logged at every maintenance run, so a log kept elsewhere
// pins it.

// Actor types.
const (
	ActorAPIClient = "api-client"
	ActorUser      = "user"
	ActorSystem    = "system"
)

// Redacted replaces a secret value in an audit diff.
const Redacted = "[redacted]"

// AuditEntry is one record of the audit trail.
type AuditEntry struct {
	// Seq numbers entries from 1, without gaps.
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
	// ActorType is ActorAPIClient, ActorUser or ActorSystem; Actor names
	// it (the client's name, the user's email).
	ActorType string `json:"actorType"`
	Actor     string `json:"actor"`
	// ActorTenant is the actor's tenant ("" for a platform actor).
	ActorTenant string `json:"actorTenant,omitempty"`
	Role        Role   `json:"role,omitempty"`
	// Source is the network address the request came from.
	Source   string `json:"source,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Action is what was done: "webhook.update", "auth.token.failed".
	Action string `json:"action"`
	// Target is what it was done to: "webhook wh-patient-sync".
	Target string `json:"target,omitempty"`
	// Diff holds what changed, {"field":{"old":...,"new":...}}, with
	// secrets replaced by Redacted; or details of the action.
	Diff json.RawMessage `json:"diff,omitempty"`
	// PrevHash is the Hash of the entry before ("" for the first).
	PrevHash string `json:"prevHash"`
	// Hash is AuditHash(PrevHash, the entry).
	Hash string `json:"hash"`
}

// AuditHash returns the hex SHA-256 that chains e: over prev and every
// field of e but Hash, in a fixed encoding. Times count in milliseconds, as
// the store keeps them.
func AuditHash(prev string, e *AuditEntry) string {
	content := struct {
		Prev        string `json:"prev"`
		Seq         int64  `json:"seq"`
		At          int64  `json:"at"`
		ActorType   string `json:"actorType"`
		Actor       string `json:"actor"`
		ActorTenant string `json:"actorTenant"`
		Role        Role   `json:"role"`
		Source      string `json:"source"`
		Tenant      string `json:"tenant"`
		Instance    string `json:"instance"`
		Action      string `json:"action"`
		Target      string `json:"target"`
		Diff        string `json:"diff"` // as stored: an altered diff need not be JSON
	}{prev, e.Seq, e.At.UnixMilli(), e.ActorType, e.Actor, e.ActorTenant, e.Role, e.Source,
		e.Tenant, e.Instance, e.Action, e.Target, string(e.Diff)}
	b, err := json.Marshal(content)
	if err != nil {
		panic("herald: audit entry does not encode: " + err.Error()) // strings always do
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// AuditAnchor is where a chain starts: the last entry purged by retention
// (zero values when none was).
type AuditAnchor struct {
	Seq  int64
	Hash string
}

// AuditChainError says which entry breaks the chain, and how.
type AuditChainError struct {
	Seq    int64
	Reason string
}

func (e *AuditChainError) Error() string {
	return fmt.Sprintf("audit entry %d %s", e.Seq, e.Reason)
}

// AuditVerifier checks a chain entry by entry, in Seq order. The zero
// value checks a chain from its first entry; set Anchor for one whose
// start was purged.
type AuditVerifier struct {
	Anchor AuditAnchor
	// Count is how many entries passed.
	Count int64
	last  AuditAnchor
	begun bool
}

// Next checks e, the next entry of the chain, and returns an
// *AuditChainError naming the first entry that was changed or removed.
func (v *AuditVerifier) Next(e *AuditEntry) error {
	if !v.begun {
		v.last, v.begun = v.Anchor, true
	}
	want := v.last.Seq + 1
	switch {
	case e.Seq > want:
		if e.Seq == want+1 {
			return &AuditChainError{Seq: want, Reason: "was removed"}
		}
		return &AuditChainError{Seq: want, Reason: fmt.Sprintf("was removed (entries %d to %d are missing)", want, e.Seq-1)}
	case e.Seq < want:
		return &AuditChainError{Seq: e.Seq, Reason: "appears twice or out of order"}
	case e.PrevHash != v.last.Hash:
		if e.Hash == AuditHash(e.PrevHash, e) && v.Count > 0 {
			// The entry is intact but the one before it is not what it
			// was when this one was written.
			return &AuditChainError{Seq: v.last.Seq, Reason: "was changed (the next entry no longer matches it)"}
		}
		return &AuditChainError{Seq: e.Seq, Reason: "was changed (its link to the entry before is broken)"}
	case e.Hash != AuditHash(e.PrevHash, e):
		return &AuditChainError{Seq: e.Seq, Reason: "was changed (its content no longer matches its hash)"}
	}
	v.last = AuditAnchor{Seq: e.Seq, Hash: e.Hash}
	v.Count++
	return nil
}

// Head returns the last entry that passed (the anchor before any).
func (v *AuditVerifier) Head() AuditAnchor {
	if !v.begun {
		return v.Anchor
	}
	return v.last
}

// AuditFilter selects audit entries. Zero fields do not filter.
type AuditFilter struct {
	// Tenant limits the entries to one tenant's; "" lists every tenant's
	// and the platform's (platform admins only).
	Tenant   string
	Actor    string
	Action   string
	From, To time.Time
	// Cursor continues a list where the previous page ended.
	Cursor string
	// Limit is the page size. Defaults to 100; at most 1000.
	Limit int
}

// AuditService keeps the audit trail.
type AuditService interface {
	// AppendAudit appends e to the trail, setting its Seq, At (when zero),
	// PrevHash and Hash. Entries are appended one at a time across every
	// node.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit returns entries matching f, newest first, and the cursor
	// of the next page ("" on the last).
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, string, error)
	// AuditHead returns the last entry's sequence number and hash (the
	// anchor when the trail is empty): what maintenance logs, so a copy
	// kept elsewhere pins the chain.
	AuditHead(ctx context.Context) (AuditAnchor, error)
	// AuditStart returns the anchor the chain now starts from: the last
	// entry retention deleted, zero when none was.
	AuditStart(ctx context.Context) (AuditAnchor, error)
	// WalkAudit calls fn with every entry in Seq order; an error from fn
	// stops the walk and is returned.
	WalkAudit(ctx context.Context, fn func(*AuditEntry) error) error
	// PurgeAudit deletes entries older than before, keeping the chain
	// verifiable: the anchor moves to the last entry deleted.
	PurgeAudit(ctx context.Context, before time.Time) (int, error)
}

// AuditChange is one field of an audit diff.
type AuditChange struct {
	Old any `json:"old"`
	New any `json:"new"`
}

// AddChange adds field to an audit diff when old and new differ.
func AddChange(diff map[string]any, field string, old, new any) {
	if !reflect.DeepEqual(old, new) {
		diff[field] = AuditChange{old, new}
	}
}

// WebhookAuditDiff is what changed in a webhook's admin settings, as the
// audit trail keeps it: every credential redacted (header and query
// parameter values, URL user info and query values, the client key), the
// client certificate named by its fingerprint.
func WebhookAuditDiff(before, after *Webhook) map[string]any {
	d := map[string]any{}
	AddChange(d, "url", AuditURL(before.URL), AuditURL(after.URL))
	if !reflect.DeepEqual(before.Headers, after.Headers) {
		d["headers"] = AuditChange{auditPairs(before.Headers), auditPairs(after.Headers)}
	}
	if !reflect.DeepEqual(before.QueryParameters, after.QueryParameters) {
		d["queryParameters"] = AuditChange{auditPairs(before.QueryParameters), auditPairs(after.QueryParameters)}
	}
	AddChange(d, "payload", before.Payload, after.Payload)
	AddChange(d, "timeoutSeconds", before.TimeoutSeconds, after.TimeoutSeconds)
	AddChange(d, "rateLimitPerSecond", before.RateLimitPerSecond, after.RateLimitPerSecond)
	AddChange(d, "signing", before.Signing, after.Signing)
	AddChange(d, "ordering", before.Ordering, after.Ordering)
	AddChange(d, "clientCertificate", certFingerprint(before.ClientCertificate), certFingerprint(after.ClientCertificate))
	if before.ClientKey != after.ClientKey {
		d["clientKey"] = AuditChange{redactedIfSet(string(before.ClientKey)), redactedIfSet(string(after.ClientKey))}
	}
	return d
}

// AuditURL is a webhook URL as the audit trail shows it: without user info
// and with query values redacted, since either may hold a credential.
func AuditURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Redacted
	}
	if u.User != nil {
		u.User = url.User(Redacted)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{Redacted}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// auditPairs is a header or query parameter list as the audit trail shows
// it: names, and every value redacted.
func auditPairs(list []NameValue) []NameValue {
	out := make([]NameValue, len(list))
	for i, nv := range list {
		out[i] = NameValue{Name: nv.Name, Value: Redacted}
	}
	return out
}

// certFingerprint names a PEM certificate by the SHA-256 of its text (""
// for none).
func certFingerprint(pemText string) string {
	if pemText == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(pemText))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

func redactedIfSet(v string) string {
	if v == "" {
		return ""
	}
	return Redacted
}
