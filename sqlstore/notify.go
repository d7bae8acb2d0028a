package sqlstore

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// dueChannel is the PostgreSQL NOTIFY channel that tells every node
// deliveries may have become due.
const dueChannel = "herald_due"

// leaderLockKey is the PostgreSQL advisory lock whose holder runs
// maintenance ("herald" in ASCII, then 2).
const leaderLockKey = 0x68657261_6c64_02

// Subscribe returns a channel that receives a value whenever deliveries may
// have become due: after events with deliveries are committed, after a
// resend, recover, release or activation, on any node when on PostgreSQL.
// The channel has a buffer of one and sends never block, so a slow reader
// sees one wake-up for many causes. It is closed when ctx ends.
func (db *DB) Subscribe(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	db.subMu.Lock()
	db.subs[ch] = struct{}{}
	if db.pg && db.listen == nil {
		select {
		case <-db.closed:
		default:
			db.listen = db.startListener()
		}
	}
	db.subMu.Unlock()
	go func() {
		<-ctx.Done()
		db.subMu.Lock()
		delete(db.subs, ch)
		close(ch)
		db.subMu.Unlock()
	}()
	return ch
}

// wake tells this process's subscribers that deliveries may be due.
func (db *DB) wake() {
	db.subMu.Lock()
	defer db.subMu.Unlock()
	for ch := range db.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// notify, inside a transaction, tells the other nodes to wake up once it
// commits. Subscribers in this process are woken by the caller after the
// commit, without the round trip through the server.
func (db *DB) notify(ctx context.Context, q q) error {
	if !db.pg {
		return nil
	}
	_, err := q.exec(ctx, `SELECT pg_notify('`+dueChannel+`', '')`)
	return err
}

// listener holds the PostgreSQL connection that LISTENs for wake-ups.
type listener struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}

// startListener runs a goroutine that LISTENs on its own connection,
// reconnecting with backoff after an outage, and wakes subscribers after each
// (re)connect, since notifications sent while it was away are lost.
func (db *DB) startListener() *listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			err := db.listenOnce(ctx, func() { backoff = 100 * time.Millisecond })
			if ctx.Err() != nil {
				return
			}
			db.cfg.Logger.Warn("wake-up listener lost its connection; reconnecting", "err", redactErr(err, db.dsnSecrets), "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}()
	return l
}

func (db *DB) listenOnce(ctx context.Context, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, db.dsn)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+dueChannel); err != nil {
		return err
	}
	connected()
	db.wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		db.wake()
	}
}

// leader holds the PostgreSQL connection that owns the leader lock.
type leader struct {
	mu   sync.Mutex
	conn *pgx.Conn // kept open while not leading, to retry the lock cheaply
	held bool
}

// TryLead reports whether this process leads maintenance. On SQLite, a
// single node, it always does. On PostgreSQL the leader holds a session
// advisory lock on a dedicated connection: each call checks that connection
// is alive and, when it is not (or the lock is not held yet), tries to take
// the lock. A leader that dies drops its connection and with it the lock, so
// another node takes over on its next call.
func (db *DB) TryLead(ctx context.Context) (bool, error) {
	if !db.pg {
		return true, nil
	}
	l := &db.lead
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil && l.conn.Ping(ctx) != nil {
		// The session, and with it any lock, is gone; another node may
		// lead already.
		l.conn.Close(context.WithoutCancel(ctx))
		l.conn, l.held = nil, false
	}
	if l.conn == nil {
		conn, err := pgx.Connect(ctx, db.dsn)
		if err != nil {
			return false, db.wrap("lead", err)
		}
		l.conn = conn
	}
	if l.held {
		return true, nil
	}
	if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(leaderLockKey)).Scan(&l.held); err != nil {
		l.conn.Close(context.WithoutCancel(ctx))
		l.conn, l.held = nil, false
		return false, db.wrap("lead", err)
	}
	if l.held {
		db.cfg.Logger.Info("took maintenance leadership")
	}
	return l.held, nil
}

// ReleaseLeadership gives up leadership at once, for a graceful shutdown, so
// another node need not wait for this one's connection to time out.
func (db *DB) ReleaseLeadership() {
	l := &db.lead
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if l.held {
		l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(leaderLockKey))
	}
	l.conn.Close(ctx)
	l.conn, l.held = nil, false
}
