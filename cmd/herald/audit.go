package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/sqlstore"
)

const auditUsage = `Usage:
  herald audit verify [flags]   walk the audit trail's hash chain and name the first entry that was changed or removed
`

// errAuditBroken is returned by audit verify when the chain is broken, so
// that the exit status says so.
var errAuditBroken = errors.New("the audit trail's chain is broken")

// runAudit is `herald audit`.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if ok, err := subcommand(args, "audit", "verify", auditUsage, stderr); !ok {
		return err
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := databaseFlags(fs, "")
	head := fs.String("expect-head", "", "SEQ:HASH of a chain head recorded earlier (from the maintenance log): the chain must still hold it")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit verify takes no arguments, got %q", fs.Args())
	}
	store, _, _, err := db.open(ctx, sqlstore.Config{ReadOnly: true}, false)
	if err != nil {
		return err
	}
	defer store.Close()
	start, err := store.AuditStart(ctx)
	if err != nil {
		return err
	}
	var wantSeq int64
	var wantHash string
	if *head != "" {
		seq, hash, ok := strings.Cut(*head, ":")
		if _, err := fmt.Sscan(seq, &wantSeq); err != nil || !ok || hash == "" {
			return fmt.Errorf("--expect-head must be SEQ:HASH, like 1234:9f86d0..., not %q", *head)
		}
		wantHash = hash
	}
	v := herald.AuditVerifier{Anchor: start}
	var sawHead bool
	err = store.WalkAudit(ctx, func(e *herald.AuditEntry) error {
		if err := v.Next(e); err != nil {
			var ce *herald.AuditChainError
			if errors.As(err, &ce) {
				fmt.Fprintf(stdout, "FAILED: %v\n", describeBreak(ce, e))
				return errAuditBroken
			}
			return err
		}
		if e.Seq == wantSeq {
			if e.Hash != wantHash {
				fmt.Fprintf(stdout, "FAILED: audit entry %d is not the one recorded as the chain head (hash %s, recorded %s): the chain was rewritten from there or earlier\n", e.Seq, e.Hash, wantHash)
				return errAuditBroken
			}
			sawHead = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if wantSeq != 0 && !sawHead && wantSeq > v.Head().Seq {
		fmt.Fprintf(stdout, "FAILED: the chain ends at entry %d, before the recorded head %d: entries %d to %d were removed\n", v.Head().Seq, wantSeq, v.Head().Seq+1, wantSeq)
		return errAuditBroken
	}
	h := v.Head()
	from := "the first entry"
	if start.Seq > 0 {
		from = fmt.Sprintf("entry %d (entries before it were deleted by retention)", start.Seq+1)
	}
	entries := "entries"
	if v.Count == 1 {
		entries = "entry"
	}
	fmt.Fprintf(stdout, "ok: %d %s verified from %s; chain head %d:%s\n", v.Count, entries, from, h.Seq, h.Hash)
	return nil
}

// describeBreak says which entry breaks the chain, with what is known of
// the entry read where the break was found.
func describeBreak(ce *herald.AuditChainError, at *herald.AuditEntry) string {
	if at != nil && at.Seq == ce.Seq {
		return fmt.Sprintf("%v: %s %s by %s at %s", ce, at.Action, at.Target, at.Actor, at.At.Format("2006-01-02T15:04:05.000Z07:00"))
	}
	return ce.Error()
}
