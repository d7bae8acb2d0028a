package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync/atomic"
)

// batch is a statement that carries many rows of values: prefix, then
// rows placeholders groups separated by commas, then suffix.
type batch struct {
	prefix string
	row    string // "(?, ?, ...)" with ncols placeholders
	ncols  int
	suffix string
}

// maxBatchRows is the largest number of rows one statement carries.
const maxBatchRows = 256

type batchKey struct {
	b *batch
	n int
}

// batchRows writes rows (args holds ncols values per row) in statements of
// a power-of-two number of rows, largest first. That keeps the number of
// distinct statement texts small (at most nine per batch), so each is
// parsed once: SQLite statements are prepared once and kept, PostgreSQL
// ones are cached by pgx per connection. Parsing a statement of hundreds of
// rows costs about as much as running it. scan, when not nil, reads the rows
// the statement returns.
func (db *DB) batchRows(ctx context.Context, q q, b *batch, args []any, scan func(*sql.Rows) error) error {
	n := len(args) / b.ncols
	for n > 0 {
		k := maxBatchRows
		for k > n {
			k /= 2
		}
		chunk := args[:k*b.ncols]
		args, n = args[k*b.ncols:], n-k
		if err := db.runBatch(ctx, q, b, k, chunk, scan); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) runBatch(ctx context.Context, q q, b *batch, k int, args []any, scan func(*sql.Rows) error) error {
	key := batchKey{b, k}
	v, ok := db.batches.Load(key)
	if !ok {
		p := &prepared{text: db.rewrite(b.prefix + strings.Repeat(b.row+",", k-1) + b.row + b.suffix)}
		if v, ok = db.batches.LoadOrStore(key, p); !ok && !db.pg {
			go db.prepare(p)
		}
	}
	p := v.(*prepared)
	var rows *sql.Rows
	var err error
	tx, inTx := q.x.(*sql.Tx)
	if stmt := p.stmt.Load(); stmt != nil && inTx {
		s := tx.StmtContext(ctx, stmt)
		if scan == nil {
			_, err = s.ExecContext(ctx, args...)
			return err
		}
		rows, err = s.QueryContext(ctx, args...)
	} else {
		if scan == nil {
			_, err = q.x.ExecContext(ctx, p.text, args...)
			return err
		}
		rows, err = q.x.QueryContext(ctx, p.text, args...)
	}
	if err != nil {
		return err
	}
	return scanAll(rows, scan)
}

// prepared is a batch statement of one size.
type prepared struct {
	text string                   // rewritten for the dialect
	stmt atomic.Pointer[sql.Stmt] // SQLite only, once prepared
}

// prepare prepares p on SQLite's single write connection. It runs in its
// own goroutine because the first use is inside a transaction, which holds
// that connection: it waits for the transaction to end, and meanwhile the
// statement runs unprepared. Transactions then reuse the statement through
// Tx.StmtContext without preparing it again.
func (db *DB) prepare(p *prepared) {
	stmt, err := db.write.Prepare(p.text)
	if err != nil {
		return // the database closed; running unprepared still works
	}
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	select {
	case <-db.closed:
		stmt.Close()
	default:
		p.stmt.Store(stmt)
	}
}

// closeStatements closes the prepared batch statements, at Close.
func (db *DB) closeStatements() {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	closeAll := func(_, v any) bool {
		if s := v.(*prepared).stmt.Load(); s != nil {
			s.Close()
		}
		return true
	}
	db.batches.Range(closeAll)
	db.stmts.Range(closeAll)
}

func scanAll(rows *sql.Rows, scan func(*sql.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
