// Package sqlstore is Herald's storage: one implementation of herald.Store
// (the API's, the UI's and the tools') and of queue.Store (the engine's)
// over database/sql that speaks two dialects, SQLite (modernc.org/sqlite, the
// embedded default) and PostgreSQL (jackc/pgx, for several nodes sharing one
// database).
//
// Both dialects run the same SQL, with "?" placeholders rewritten to "$n" for
// PostgreSQL in one place (DB.rewrite); the few statements that differ (row
// locks, the claim query, wake-ups, leadership) branch on db.pg. The schema
// lives in migrations/, numbered files applied in order by Open.
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/keyring"
	"github.com/heraldhooks/herald/queue"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Config configures a DB. Keys is required.
type Config struct {
	// Keys seals the secrets the store keeps and opens them again.
	// Required: Open fails without it, and when the database's secrets are
	// sealed with a master key the ring does not hold.
	Keys *keyring.Ring
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
	// Logger receives connection and migration events. Defaults to a logger
	// that discards everything.
	Logger *slog.Logger
	// MaxConns is the size of the PostgreSQL connection pool. Defaults to 16.
	MaxConns int
	// ReadOnly opens the database for reading beside a running node (herald
	// audit verify): no migration, no lock on a SQLite file, no writes.
	// The schema must be up to date and the master key must match.
	ReadOnly bool
}

// DB is a Herald store on SQLite or PostgreSQL. It implements herald.Store
// (for the API, the web UI and the tools) and queue.Store (for the
// engine), and is safe for concurrent use.
type DB struct {
	cfg Config
	pg  bool
	dsn string
	// dsnSecrets are the passwords in dsn, masked in every error and log
	// line the store passes on (redactErr).
	dsnSecrets []string

	// write takes every transaction and write; read serves plain reads.
	// On PostgreSQL they are the same pool. On SQLite write has a single
	// connection whose transactions begin IMMEDIATE, so writers queue in
	// Go instead of failing with SQLITE_BUSY, while readers run in
	// parallel on their own connections thanks to WAL.
	write *sql.DB
	read  *sql.DB
	// checkpointDone is closed when the SQLite checkpointer has stopped.
	checkpointDone chan struct{}

	queries sync.Map     // query text with "?" -> query text with "$n"
	batches sync.Map     // batchKey -> *prepared
	stmts   sync.Map     // query text -> *prepared, statements of write transactions (SQLite)
	nstmts  atomic.Int32 // entries in stmts
	stmtMu  sync.Mutex   // orders storing prepared statements before closing them

	subMu  sync.Mutex
	subs   map[chan struct{}]struct{}
	listen *listener // PostgreSQL LISTEN connection, started by the first Subscribe

	// ids makes the IDs of new events and deliveries (id.go).
	ids idSeq
	// slots are a SQLite node's rate-limit windows (pace.go).
	slots slotWindows

	lead  leader
	ready readiness
	// checkpointErr is the error of the SQLite checkpointer's last run, nil
	// after a run that succeeded (see Ready).
	checkpointErr atomic.Pointer[error]
	// countsFolded is the minute up to which (exclusive) PurgeFinished has
	// folded attempt_counts, 0 before its first run (see foldAttemptCounts).
	countsFolded atomic.Int64

	// lockFile holds an exclusive flock on "<sqlite file>.lock" while the
	// store is open: SQLite serves one node, and a second process on the
	// same file would take the first one's in-flight deliveries.
	lockFile *os.File

	closeOnce sync.Once
	closed    chan struct{}
}

// DB is both stores: what the front doors and tools use, and the engine's
// queue contract.
var (
	_ herald.Store = (*DB)(nil)
	_ queue.Store  = (*DB)(nil)
)

var _ herald.Store = (*DB)(nil)

// Open opens the database named by dsn and brings its schema up to date.
// dsn is "sqlite:<path>" (the parent directory is created) or a
// "postgres://" or "postgresql://" URL. Several nodes may open the same
// PostgreSQL database at once: migrations run under an advisory lock.
// A database that does not answer is EUNAVAILABLE; a malformed dsn EINVALID.
// No error it returns holds a password of dsn.
func Open(ctx context.Context, dsn string, cfg Config) (*DB, error) {
	db, err := open(ctx, dsn, cfg)
	return db, redactErr(err, dsnSecrets(dsn))
}

func open(ctx context.Context, dsn string, cfg Config) (*DB, error) {
	if cfg.Keys == nil {
		return nil, herald.Errorf(herald.EINVALID, "sqlstore: Config.Keys is required: Herald seals the secrets it keeps under a master key.")
	}
	if cfg.Now == nil { // funcs are not comparable, so no cmp.Or here
		cfg.Now = time.Now
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cfg.MaxConns = cmp.Or(cfg.MaxConns, 16)
	db := &DB{cfg: cfg, dsn: dsn, dsnSecrets: dsnSecrets(dsn), subs: map[chan struct{}]struct{}{}, closed: make(chan struct{})}

	switch {
	case strings.HasPrefix(dsn, "sqlite:") && cfg.ReadOnly:
		if err := db.openSQLiteReadOnly(strings.TrimPrefix(dsn, "sqlite:")); err != nil {
			return nil, err
		}
	case strings.HasPrefix(dsn, "sqlite:"):
		if err := db.openSQLite(strings.TrimPrefix(dsn, "sqlite:")); err != nil {
			return nil, err
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db.pg = true
		if _, err := pgx.ParseConfig(dsn); err != nil {
			return nil, herald.Errorf(herald.EINVALID, "database %s is not a valid PostgreSQL URL: %s.", RedactDSN(dsn), strings.TrimSuffix(invalidDSN(err), "."))
		}
		w, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, herald.Errorf(herald.EINVALID, "database %s is not a valid PostgreSQL URL: %v.", RedactDSN(dsn), err)
		}
		w.SetMaxOpenConns(cfg.MaxConns)
		w.SetMaxIdleConns(cfg.MaxConns)
		w.SetConnMaxIdleTime(5 * time.Minute)
		db.write, db.read = w, w
	default:
		return nil, herald.Errorf(herald.EINVALID, "database %q is not known: use sqlite:<path> or postgres://user@host:5432/db.", RedactDSN(dsn))
	}

	if cfg.ReadOnly {
		if err := db.checkKeys(ctx); err != nil {
			db.Close()
			return nil, db.wrap("open database", err)
		}
		return db, nil
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, db.wrap("open database", err)
	}
	if err := db.checkKeys(ctx); err != nil {
		db.Close()
		return nil, db.wrap("open database", err)
	}
	if n, err := db.sealPlain(ctx); err != nil {
		db.Close()
		return nil, db.wrap("open database: seal secrets", err)
	} else if n > 0 {
		cfg.Logger.Info("sealed secrets that were stored in the clear by an earlier version", "rows", n)
	}
	return db, nil
}

// lockSQLite takes an exclusive, non-blocking flock on path+".lock", or
// says that another process has the database open. path is the resolved
// path of the database (resolveSQLite), so a second name for the same
// file, through a symlink, finds the same lock. The kernel drops the lock
// when the process dies, kill -9 included, so a restart never finds a
// stale lock.
func (db *DB) lockSQLite(path string) error {
	if err := createPrivate(path + ".lock"); err != nil {
		return fmt.Errorf("create lock file: %w", err)
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return herald.Errorf(herald.ECONFLICT, "database %s is in use by another Herald process; SQLite serves one node (use PostgreSQL to run several).", path)
		}
		return fmt.Errorf("lock %s.lock: %w", path, err)
	}
	db.lockFile = f
	return nil
}

// SQLite's files hold health data: the database, its -wal and -shm (SQLite
// gives them the database file's mode) and the lock file are 0600, and a
// directory Herald creates for them 0700, whatever the umask.
const (
	privateFile = 0o600
	privateDir  = 0o700
)

// createPrivate creates the file path, mode 0600, unless it exists.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, privateFile)
	if errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return err
	}
	// The umask may have taken bits off, never added any; Chmod makes the
	// mode exactly what it should be.
	if err := f.Chmod(privateFile); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mkdirPrivate creates dir and any missing parents, each mode 0700.
func mkdirPrivate(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, privateDir); err != nil {
		return err
	}
	for _, d := range missing {
		if err := os.Chmod(d, privateDir); err != nil {
			return err
		}
	}
	return nil
}

// resolveSQLite returns the path the database file really has: symlinks
// resolved, those of its directory when the file does not exist yet. Every
// name of one database then leads to one lock file and one -wal file.
func resolveSQLite(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return "", herald.Errorf(herald.EINVALID, "database %s is a symbolic link to a file that does not exist; point it at the database or remove it.", path)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(path)), nil
}

func (db *DB) openSQLite(path string) error {
	if path == "" {
		return herald.Errorf(herald.EINVALID, "database \"sqlite:\" names no file; use sqlite:<path>, like sqlite:herald-data/herald.db.")
	}
	if strings.ContainsAny(path, "?#") {
		return herald.Errorf(herald.EINVALID, "database path %q must not contain ? or #.", path)
	}
	if err := mkdirPrivate(filepath.Dir(path)); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	path, err := resolveSQLite(path)
	if err != nil {
		return fmt.Errorf("resolve database path: %w", err)
	}
	if err := db.lockSQLite(path); err != nil {
		return err
	}
	if err := createPrivate(path); err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		db.cfg.Logger.Warn("the database file may be read by others than its owner, yet it holds health data: chmod 600 it and its -wal and -shm files",
			"file", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	// synchronous=FULL: an event acknowledged with 202 must survive a
	// power cut, not only a process crash. secure_delete=ON: what a
	// delete, an update or the retention purge leaves behind is zeroed,
	// in the page and on the free list, so that neither a purged event's
	// health data nor a plain value sealed at start lingers in the file.
	base := path + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)&_pragma=secure_delete(1)"
	// wal_autocheckpoint(0): the checkpointer goroutine copies the WAL
	// into the database file, so no commit waits for a checkpoint and its
	// fsync of the database file.
	w, err := sql.Open("sqlite", base+"&_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// Create the file and switch it to WAL before readers connect.
	if err := w.Ping(); err != nil {
		w.Close()
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return fmt.Errorf("open sqlite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	c, err := sql.Open("sqlite", base)
	if err != nil {
		w.Close()
		r.Close()
		return fmt.Errorf("open sqlite: %w", err)
	}
	c.SetMaxOpenConns(1)
	db.write, db.read = w, r
	db.checkpointDone = make(chan struct{})
	go db.checkpoint(c)
	return nil
}

// openSQLiteReadOnly opens an existing SQLite file for reading only,
// without taking the single-node lock: a running node may hold it.
func (db *DB) openSQLiteReadOnly(path string) error {
	if _, err := os.Stat(path); err != nil {
		return herald.Errorf(herald.ENOTFOUND, "database %s does not exist.", path)
	}
	r, err := sql.Open("sqlite", path+"?mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return fmt.Errorf("open sqlite: %w", err)
	}
	r.SetMaxOpenConns(4)
	db.write, db.read = r, r
	return nil
}

// checkpointEvery is how often the SQLite checkpointer copies committed
// WAL frames into the database file.
const checkpointEvery = 250 * time.Millisecond

// walRestartFrames is the WAL length, in pages, beyond which a checkpoint
// waits for the writer so that the WAL can start over: 16,384 pages of
// 4 KiB is 64 MiB.
const walRestartFrames = 16384

// checkpoint runs SQLite's WAL checkpoints on its own connection until the
// store closes, instead of the committing writer (wal_autocheckpoint),
// which would make every thousandth commit wait for the copy and an fsync
// of the database file. PASSIVE checkpoints never block the writer or
// readers; the WAL restarts from its beginning once a checkpoint has caught
// up, so it stays small.
func (db *DB) checkpoint(c *sql.DB) {
	defer close(db.checkpointDone)
	defer c.Close()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-db.closed:
			return
		case <-t.C:
			// busy, the frames in the WAL, and those copied.
			var busy, frames, copied int
			err := c.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
			if err == nil && frames >= walRestartFrames {
				// Under sustained writes a passive checkpoint never
				// catches up with the end of the WAL, which then grows
				// without bound: this one holds the writer back until it
				// has copied everything, and the WAL starts over.
				_, err = c.Exec(`PRAGMA wal_checkpoint(RESTART)`)
			}
			if err != nil {
				db.cfg.Logger.Warn("sqlite checkpoint failed; retrying", "err", err)
				db.checkpointErr.Store(&err)
			} else {
				db.checkpointErr.Store(nil)
			}
		}
	}
}

// Dialect returns "sqlite" or "postgres".
func (db *DB) Dialect() string {
	if db.pg {
		return "postgres"
	}
	return "sqlite"
}

// Ping reports whether the database answers; EUNAVAILABLE when it does not.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return db.wrap("ping", err)
	}
	return nil
}

// readyEvery is how often Ready writes to find out; calls in between get
// the last answer.
const readyEvery = time.Second

// readiness is what Ready last found out. Its fields are guarded by mu.
type readiness struct {
	mu      sync.Mutex
	probing bool      // a probe is under way; others get the last answer
	at      time.Time // when the last probe ended
	err     error
}

// Ready reports whether a write commits now: it writes a heartbeat row in
// settings (a ping would pass on a full disk or a read-only database), at
// most once every readyEvery, and on SQLite also fails while the last
// checkpoint failed, since the database file cannot take what the WAL
// holds. Calls in between, and calls while a probe is under way, get the
// last answer. EUNAVAILABLE when the store cannot commit.
func (db *DB) Ready(ctx context.Context) error {
	r := &db.ready
	r.mu.Lock()
	// Real time, not cfg.Now: this paces work, and a test clock that stands
	// still must not freeze the answer.
	if r.probing || (!r.at.IsZero() && time.Since(r.at) < readyEvery) {
		err := r.err
		if r.at.IsZero() {
			err = herald.Errorf(herald.EUNAVAILABLE, "database not checked yet.")
		}
		r.mu.Unlock()
		return err
	}
	r.probing = true
	r.mu.Unlock()

	// The probe outlives a caller that gives up, so that its answer is
	// about the database and not about the caller.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	beat := func() error {
		_, err := q{db, db.write}.exec(pctx, `INSERT INTO settings (name, value) VALUES ('heartbeat', ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.FormatInt(time.Now().UnixMilli(), 10))
		return err
	}
	err := beat()
	if err != nil && unavailable(err) && pctx.Err() == nil {
		// Once the database is back, the first statement may still meet a
		// pooled connection that broke while it was gone; the second gets a
		// new one.
		err = beat()
	}
	if err == nil {
		if p := db.checkpointErr.Load(); p != nil {
			err = fmt.Errorf("checkpoint: %w", *p)
		}
	}
	err = db.wrap("ready", err)

	r.mu.Lock()
	r.probing, r.at, r.err = false, time.Now(), err
	r.mu.Unlock()
	return err
}

// Close stops the wake-up listener, gives up leadership and closes the
// database. Subscriptions' channels stay open until their contexts end.
func (db *DB) Close() error {
	var err error
	db.closeOnce.Do(func() {
		close(db.closed)
		db.subMu.Lock()
		l := db.listen
		db.subMu.Unlock()
		if l != nil {
			l.stop()
		}
		db.ReleaseLeadership()
		if db.checkpointDone != nil {
			<-db.checkpointDone
		}
		db.closeStatements()
		if db.checkpointDone != nil {
			// A clean stop leaves the whole database in its file and an
			// empty WAL, whoever still holds a connection: a copy of the
			// file is then a complete backup, and a value sealed at start
			// has replaced its plain predecessor in the file too.
			if _, cerr := db.write.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); cerr != nil {
				db.cfg.Logger.Warn("sqlite checkpoint at close failed; the WAL is copied in at the next start", "err", cerr)
			}
		}
		if db.read != db.write && db.read != nil {
			err = db.read.Close()
		}
		if db.write != nil {
			err = errors.Join(db.write.Close(), err)
		}
		if db.lockFile != nil {
			db.lockFile.Close() // releases the flock
		}
	})
	return err
}

// now is the current time as the database keeps it: UTC, to the
// millisecond, so what a method returns equals what it stored.
func (db *DB) now() time.Time { return fromMS(ms(db.cfg.Now())) }

// querier is what *sql.DB, *sql.Tx and *sql.Conn have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// q runs queries written with "?" placeholders on either dialect.
type q struct {
	db *DB
	x  querier
}

func (db *DB) reader() q { return q{db, db.read} }

func (q q) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return q.x.ExecContext(ctx, q.db.rewrite(query), args...)
}

func (q q) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return q.x.QueryContext(ctx, q.db.rewrite(query), args...)
}

// maxStmts bounds the statements kept prepared; queries with IN lists
// pad them (inList) so that their texts stay few.
const maxStmts = 512

// stmt returns query prepared on SQLite's write connection for use in the
// transaction q runs in, or nil: outside a write transaction, on
// PostgreSQL (pgx keeps its own statement cache per connection), or until
// the statement is prepared. SQLite otherwise parses every statement
// anew, which costs a claim about as much as running it; the single
// writer is what limits SQLite's throughput. It prepares as batch.go does.
func (q q) stmt(ctx context.Context, query string) *sql.Stmt {
	tx, ok := q.x.(*sql.Tx)
	if !ok || q.db.pg {
		return nil
	}
	v, ok := q.db.stmts.Load(query)
	if !ok {
		if q.db.nstmts.Load() >= maxStmts {
			return nil
		}
		p := &prepared{text: query}
		if v, ok = q.db.stmts.LoadOrStore(query, p); !ok {
			q.db.nstmts.Add(1)
			go q.db.prepare(p)
			return nil
		}
	}
	if s := v.(*prepared).stmt.Load(); s != nil {
		return tx.StmtContext(ctx, s)
	}
	return nil
}

func (q q) row(ctx context.Context, query string, args ...any) *sql.Row {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return q.x.QueryRowContext(ctx, q.db.rewrite(query), args...)
}

// rewrite turns "?" placeholders into PostgreSQL's "$1", "$2"... Queries
// never carry a literal "?" in a string, so no quoting rules are needed.
func (db *DB) rewrite(query string) string {
	if !db.pg {
		return query
	}
	if v, ok := db.queries.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(query[i])
	}
	out := b.String()
	// Queries built with a variable number of placeholders would grow the
	// cache without bound; only keep the short, fixed ones.
	if n <= 32 {
		db.queries.Store(query, out)
	}
	return out
}

// forUpdate is the row-lock clause of a SELECT inside a write transaction.
// SQLite needs none: its single writer already excludes others.
func (db *DB) forUpdate() string {
	if db.pg {
		return " FOR UPDATE"
	}
	return ""
}

// forKeyShare is the row-lock clause of a SELECT of webhooks an ingest
// makes deliveries for. On PostgreSQL FOR KEY SHARE conflicts only with
// FOR UPDATE, which deactivate takes: a deactivation waits for the ingest
// to commit and then cancels its deliveries too, or the ingest waits for
// the deactivation and then no longer sees the webhook as active. It does
// not conflict with the updates of a webhook's health that recording
// results makes, so ingests and results do not wait on each other.
// SQLite needs none: its single writer already excludes others.
func (db *DB) forKeyShare() string {
	if db.pg {
		return " FOR KEY SHARE"
	}
	return ""
}

// tx runs fn in a write transaction and commits it, or rolls it back when fn
// or the commit fails. On PostgreSQL a transaction chosen as a deadlock
// victim, or failing to serialise, is run again, a few times: such failures
// say nothing about the request. fn must therefore not carry state from one
// run to the next.
func (db *DB) tx(ctx context.Context, fn func(q q) error) error {
	for attempt := 1; ; attempt++ {
		err := db.tx1(ctx, fn)
		if err == nil || attempt == 3 || !retryable(err) {
			return err
		}
		db.cfg.Logger.Debug("retrying transaction", "err", redactErr(err, db.dsnSecrets), "attempt", attempt)
	}
}

func (db *DB) tx1(ctx context.Context, fn func(q q) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(q{db, tx}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// placeholders returns n comma-separated "?".
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}

// inList returns the placeholders and arguments of an IN list of vals
// (not empty). On SQLite the list is padded to a power of two by repeating
// the last value, which changes nothing an IN list selects: the
// statement's text then takes one of a few forms, each prepared once (see
// q.stmt). PostgreSQL gets the list as it is: there the same text run many
// times makes the server switch to a generic plan, and with padded lists
// the claim's generic plans doubled the server's CPU per delivery
// (docs/performance.md).
func inList[T any](db *DB, vals []T) (string, []any) {
	n := len(vals)
	for !db.pg && n&(n-1) != 0 {
		n++
	}
	args := make([]any, n)
	for i := range args {
		args[i] = vals[min(i, len(vals)-1)]
	}
	return placeholders(n), args
}

// anys converts a slice for use as query arguments.
func anys[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// Times are stored as unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}
