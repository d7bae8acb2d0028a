package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/heraldhooks/herald/queue"
)

// slotWindows is a SQLite node's record of its webhooks' rate-limit
// windows: one node has its SQLite file to itself, so the windows it
// takes slots from need no I/O. Guarded by mu.
type slotWindows struct {
	mu sync.Mutex
	m  map[string]slotWindow // by webhook ID
}

// slotWindow is a window's start (unix milliseconds) and the slots taken
// of it.
type slotWindow struct {
	start int64
	used  int
}

// TakeSlots takes request slots of a webhook's rate-limit window
// (queue.Store). On PostgreSQL the nodes share each webhook's window in a
// row of webhook_rate_windows, one statement per take: the row moves to
// a new window when a node asks for one, and a node whose clock is behind
// (it asks for an older window) gets nothing. On SQLite the window is
// kept in memory.
func (db *DB) TakeSlots(ctx context.Context, r queue.SlotRequest) (first, n int, err error) {
	want := min(r.Want, r.Limit-r.From)
	if want <= 0 || r.From < 0 {
		return 0, 0, nil
	}
	start := ms(r.Window)
	if !db.pg {
		return db.slots.take(r.Webhook, start, r.From, want, r.Limit)
	}
	var used, taken int
	// from, want and limit are cast: PostgreSQL cannot tell the type of a
	// parameter in GREATEST, LEAST and +.
	err = db.write.QueryRowContext(ctx, db.rewrite(`INSERT INTO webhook_rate_windows AS w (webhook_id, window_ms, used, taken)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (webhook_id) DO UPDATE SET
			used = CASE WHEN w.window_ms < excluded.window_ms THEN excluded.used
				ELSE GREATEST(w.used, CAST(? AS INTEGER)) + LEAST(CAST(? AS INTEGER), CAST(? AS INTEGER) - GREATEST(w.used, CAST(? AS INTEGER))) END,
			taken = CASE WHEN w.window_ms < excluded.window_ms THEN excluded.taken
				ELSE LEAST(CAST(? AS INTEGER), CAST(? AS INTEGER) - GREATEST(w.used, CAST(? AS INTEGER))) END,
			window_ms = excluded.window_ms
		WHERE w.window_ms < excluded.window_ms OR (w.window_ms = excluded.window_ms AND GREATEST(w.used, CAST(? AS INTEGER)) < CAST(? AS INTEGER))
		RETURNING used, taken`),
		r.Webhook, start, r.From+want, want,
		r.From, want, r.Limit, r.From,
		want, r.Limit, r.From,
		r.From, r.Limit).Scan(&used, &taken)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, db.wrap("take rate-limit slots", err)
	}
	return used - taken, taken, nil
}

// prune forgets the windows that started before start.
func (s *slotWindows) prune(start int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, w := range s.m {
		if w.start < start {
			delete(s.m, id)
		}
	}
}

// take is TakeSlots on SQLite.
func (s *slotWindows) take(webhook string, start int64, from, want, limit int) (first, n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]slotWindow{}
	}
	w := s.m[webhook]
	switch {
	case w.start > start:
		return 0, 0, nil
	case w.start < start:
		w = slotWindow{start: start}
	}
	first = max(w.used, from)
	n = min(want, limit-first)
	if n <= 0 {
		return 0, 0, nil
	}
	w.used = first + n
	s.m[webhook] = w
	return first, n, nil
}
