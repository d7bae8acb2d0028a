package storetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
)

func init() {
	register("AuditAppendChainsAndLists", func(e *env) {
		var entries []*herald.AuditEntry
		for i := range 5 {
			tenant := "acme"
			if i%2 == 1 {
				tenant = "globex"
			}
			a := &herald.AuditEntry{ActorType: herald.ActorAPIClient, Actor: fmt.Sprintf("client-%d", i%2), Role: herald.RoleAdmin,
				Source: "127.0.0.1", Tenant: tenant, Instance: "live", Action: []string{"webhook.update", "webhook.activate"}[i%2],
				Target: "webhook wh", Diff: json.RawMessage(`{"url":{"old":"a","new":"b"}}`)}
			e.must(e.S.AppendAudit(e.Ctx, a))
			e.Clock.Advance(time.Second)
			entries = append(entries, a)
		}
		if entries[0].Seq != 1 || entries[0].PrevHash != "" || entries[4].Seq != 5 || entries[4].PrevHash != entries[3].Hash {
			e.Fatalf("chain: %+v", entries)
		}
		// Walked back, the chain verifies and the entries are as written.
		start, err := e.S.AuditStart(e.Ctx)
		e.must(err)
		v := herald.AuditVerifier{Anchor: start}
		e.must(e.S.WalkAudit(e.Ctx, func(a *herald.AuditEntry) error {
			want := entries[a.Seq-1]
			if !a.At.Equal(want.At) || a.Actor != want.Actor || string(a.Diff) != string(want.Diff) || a.Hash != want.Hash {
				e.Fatalf("entry %d read back as %+v, want %+v", a.Seq, a, want)
			}
			return v.Next(a)
		}))
		if v.Count != 5 {
			e.Fatalf("verified %d entries, want 5", v.Count)
		}
		if head, err := e.S.AuditHead(e.Ctx); err != nil || head != v.Head() {
			e.Fatalf("AuditHead = %+v, %v; want %+v", head, err, v.Head())
		}

		list, next, err := e.S.ListAudit(e.Ctx, herald.AuditFilter{Tenant: "acme"})
		e.must(err)
		if len(list) != 3 || list[0].Seq != 5 || list[2].Seq != 1 || next != "" {
			e.Fatalf("ListAudit(acme) = %d entries from %d, next %q", len(list), list[0].Seq, next)
		}
		list, next, err = e.S.ListAudit(e.Ctx, herald.AuditFilter{Limit: 2})
		e.must(err)
		if len(list) != 2 || list[0].Seq != 5 || next == "" {
			e.Fatalf("page 1: %d entries, next %q", len(list), next)
		}
		list, _, err = e.S.ListAudit(e.Ctx, herald.AuditFilter{Limit: 2, Cursor: next})
		e.must(err)
		if len(list) != 2 || list[0].Seq != 3 {
			e.Fatalf("page 2 starts at %d", list[0].Seq)
		}
		list, _, err = e.S.ListAudit(e.Ctx, herald.AuditFilter{Actor: "client-1", Action: "webhook"})
		e.must(err)
		if len(list) != 2 || list[0].Actor != "client-1" {
			e.Fatalf("by actor and action prefix: %d", len(list))
		}
		list, _, err = e.S.ListAudit(e.Ctx, herald.AuditFilter{Action: "webhook.update", From: Epoch.Add(time.Second), To: Epoch.Add(4 * time.Second)})
		e.must(err)
		if len(list) != 1 || list[0].Seq != 3 {
			e.Fatalf("by action and time: %+v", list)
		}
		_, _, err = e.S.ListAudit(e.Ctx, herald.AuditFilter{Cursor: "garbage"})
		e.wantCode(err, herald.EINVALID)
	})

	register("AuditChainSurvivesRewrap", func(e *env) {
		e.must(e.S.AppendAudit(e.Ctx, &herald.AuditEntry{ActorType: herald.ActorSystem, Actor: "test", Action: "test.with-diff",
			Diff: json.RawMessage(`{"url":{"old":"https://a.example/hooks/T0/B0/secret-path","new":""}}`)}))
		e.must(e.S.AppendAudit(e.Ctx, &herald.AuditEntry{ActorType: herald.ActorSystem, Actor: "test", Action: "test.without-diff"}))
		if e.rewrap == nil {
			e.Skip("the factory gave no Rewrap")
		}
		e.must(e.rewrap(e.Ctx))
		v := herald.AuditVerifier{}
		e.must(e.S.WalkAudit(e.Ctx, v.Next))
		if v.Count != 2 {
			e.Fatalf("verified %d entries after rewrap, want 2", v.Count)
		}
		list, _, err := e.S.ListAudit(e.Ctx, herald.AuditFilter{})
		e.must(err)
		if len(list[0].Diff) != 0 || !strings.Contains(string(list[1].Diff), "secret-path") {
			e.Fatalf("diffs after rewrap: %q, %q", list[0].Diff, list[1].Diff)
		}
	})

	register("AuditConcurrentAppendsMakeOneChain", func(e *env) {
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- e.S.AppendAudit(e.Ctx, &herald.AuditEntry{ActorType: herald.ActorSystem, Actor: "test", Action: fmt.Sprintf("test.%d", i)})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			e.must(err)
		}
		v := herald.AuditVerifier{}
		e.must(e.S.WalkAudit(e.Ctx, v.Next))
		if v.Count != 40 {
			e.Fatalf("chain holds %d entries, want 40", v.Count)
		}
	})

	register("AuditPurgeKeepsTheChainVerifiable", func(e *env) {
		for i := range 6 {
			e.must(e.S.AppendAudit(e.Ctx, &herald.AuditEntry{ActorType: herald.ActorSystem, Actor: "test", Action: fmt.Sprintf("test.%d", i)}))
			e.Clock.Advance(time.Hour)
		}
		n, err := e.S.PurgeAudit(e.Ctx, Epoch.Add(3*time.Hour))
		e.must(err)
		if n != 3 {
			e.Fatalf("PurgeAudit = %d, want 3", n)
		}
		start, err := e.S.AuditStart(e.Ctx)
		e.must(err)
		if start.Seq != 3 || start.Hash == "" {
			e.Fatalf("anchor after purge = %+v", start)
		}
		v := herald.AuditVerifier{Anchor: start}
		e.must(e.S.WalkAudit(e.Ctx, v.Next))
		if v.Count != 3 {
			e.Fatalf("%d entries verified after purge, want 3", v.Count)
		}
		// The next entry continues the chain from the last one kept.
		e.must(e.S.AppendAudit(e.Ctx, &herald.AuditEntry{ActorType: herald.ActorSystem, Actor: "test", Action: "test.after"}))
		// Purging everything keeps the anchor, so the next entry is 8.
		_, err = e.S.PurgeAudit(e.Ctx, Epoch.Add(100*time.Hour))
		e.must(err)
		if head, err := e.S.AuditHead(e.Ctx); err != nil || head.Seq != 7 {
			e.Fatalf("AuditHead with every entry purged = %+v, %v; want the anchor, 7", head, err)
		}
		a := &herald.AuditEntry{ActorType: herald.ActorSystem, Actor: "test", Action: "test.last"}
		e.must(e.S.AppendAudit(e.Ctx, a))
		start, err = e.S.AuditStart(e.Ctx)
		e.must(err)
		if a.Seq != 8 || a.PrevHash != start.Hash {
			e.Fatalf("entry after purging all: seq %d prev %s, anchor %+v", a.Seq, a.PrevHash, start)
		}
	})
}
