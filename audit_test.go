package herald_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

// chain returns n entries chained from anchor.
func chain(anchor herald.AuditAnchor, n int) []*herald.AuditEntry {
	var out []*herald.AuditEntry
	prev, seq := anchor.Hash, anchor.Seq
	for i := range n {
		seq++
		e := &herald.AuditEntry{Seq: seq, At: time.UnixMilli(1_800_000_000_000 + int64(i)), ActorType: herald.ActorAPIClient,
			Actor: "admin", Role: herald.RolePlatformAdmin, Action: "webhook.update", Target: "webhook wh",
			Diff: json.RawMessage(`{"url":{"old":"https://a.example/","new":"https://b.example/"}}`), PrevHash: prev}
		e.Hash = herald.AuditHash(prev, e)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

func verify(anchor herald.AuditAnchor, entries []*herald.AuditEntry) error {
	v := herald.AuditVerifier{Anchor: anchor}
	for _, e := range entries {
		if err := v.Next(e); err != nil {
			return err
		}
	}
	return nil
}

func TestAuditChain(t *testing.T) {
	anchor := herald.AuditAnchor{Seq: 7, Hash: "abc"}
	for _, tc := range []struct {
		name   string
		anchor herald.AuditAnchor
		break_ func([]*herald.AuditEntry) []*herald.AuditEntry
		seq    int64 // 0: the chain verifies
		reason string
	}{
		{"intact", herald.AuditAnchor{}, func(es []*herald.AuditEntry) []*herald.AuditEntry { return es }, 0, ""},
		{"intact after an anchor", anchor, func(es []*herald.AuditEntry) []*herald.AuditEntry { return es }, 0, ""},
		{"diff edited", herald.AuditAnchor{}, func(es []*herald.AuditEntry) []*herald.AuditEntry {
			es[2].Diff = json.RawMessage(`{"url":{"old":"https://a.example/","new":"https://evil.example/"}}`)
			return es
		}, 3, "was changed (its content"},
		{"actor edited and its hash recomputed", herald.AuditAnchor{}, func(es []*herald.AuditEntry) []*herald.AuditEntry {
			es[2].Actor = "someone-else"
			es[2].Hash = herald.AuditHash(es[2].PrevHash, es[2])
			return es
		}, 3, "the next entry no longer matches it"},
		{"middle entry removed", herald.AuditAnchor{}, func(es []*herald.AuditEntry) []*herald.AuditEntry {
			return append(es[:3:3], es[4:]...)
		}, 4, "was removed"},
		{"two removed", herald.AuditAnchor{}, func(es []*herald.AuditEntry) []*herald.AuditEntry {
			return append(es[:1:1], es[3:]...)
		}, 2, "entries 2 to 3 are missing"},
		{"first entry removed", herald.AuditAnchor{}, func(es []*herald.AuditEntry) []*herald.AuditEntry { return es[1:] }, 1, "was removed"},
		{"time edited", anchor, func(es []*herald.AuditEntry) []*herald.AuditEntry {
			es[0].At = es[0].At.Add(time.Hour)
			return es
		}, 8, "was changed"},
		{"anchor does not match", herald.AuditAnchor{Seq: 7, Hash: "other"}, func(es []*herald.AuditEntry) []*herald.AuditEntry { return es }, 8, "link to the entry before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := herald.AuditAnchor{}
			if tc.anchor.Seq != 0 {
				base = anchor
			}
			err := verify(tc.anchor, tc.break_(chain(base, 6)))
			if tc.seq == 0 {
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				return
			}
			var ce *herald.AuditChainError
			if !errors.As(err, &ce) || ce.Seq != tc.seq || !strings.Contains(ce.Error(), tc.reason) {
				t.Fatalf("verify = %v, want entry %d %s", err, tc.seq, tc.reason)
			}
		})
	}
}
