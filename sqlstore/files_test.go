package sqlstore_test

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
)

// SQLite's files are the owner's alone, whatever the umask: the database,
// its -wal and -shm, the lock file 0600, the directories Herald makes 0700.
// Not parallel: the umask is the process's.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	root := t.TempDir()
	path := filepath.Join(root, "a", "b", "herald.db")
	db, err := sqlstore.Open(context.Background(), "sqlite:"+path, sqlstore.Config{Keys: storekit.Keys})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateTenant(context.Background(), "acme"); err != nil { // the -wal and -shm exist from here
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		mode fs.FileMode
	}{
		{filepath.Join(root, "a"), 0o700}, {filepath.Join(root, "a", "b"), 0o700},
		{path, 0o600}, {path + "-wal", 0o600}, {path + "-shm", 0o600}, {path + ".lock", 0o600},
	} {
		fi, err := os.Stat(f.name)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if got := fi.Mode().Perm(); got != f.mode {
			t.Errorf("%s is %04o, want %04o", strings.TrimPrefix(f.name, root), got, f.mode)
		}
	}
}

// The single-node lock is on the database's real path: a second name for
// it, through a symlink to the file or to its directory, finds the lock.
func TestSQLiteLockFollowsSymlinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "herald.db")
	db, err := sqlstore.Open(context.Background(), "sqlite:"+path, sqlstore.Config{Keys: storekit.Keys})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fileLink := filepath.Join(dir, "link.db")
	dirLink := filepath.Join(dir, "elsewhere")
	if err := os.Symlink(path, fileLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "data"), dirLink); err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{fileLink, filepath.Join(dirLink, "herald.db")} {
		_, err := sqlstore.Open(context.Background(), "sqlite:"+other, sqlstore.Config{Keys: storekit.Keys})
		if herald.ErrorCode(err) != herald.ECONFLICT || !strings.Contains(herald.ErrorMessage(err), "in use by another Herald process") {
			t.Errorf("Open(%s) beside the running store: %v, want ECONFLICT saying it is in use", strings.TrimPrefix(other, dir), err)
		}
	}
	// A link to nothing is refused rather than followed to a new file with
	// a lock of its own.
	dangling := filepath.Join(dir, "dangling.db")
	if err := os.Symlink(filepath.Join(dir, "nowhere", "herald.db"), dangling); err != nil {
		t.Fatal(err)
	}
	_, err = sqlstore.Open(context.Background(), "sqlite:"+dangling, sqlstore.Config{Keys: storekit.Keys})
	if herald.ErrorCode(err) != herald.EINVALID || !strings.Contains(herald.ErrorMessage(err), "symbolic link") {
		t.Errorf("Open through a dangling link: %v, want EINVALID naming the link", err)
	}
}

// Ready asks for a commit, not a ping: a read-only PostgreSQL answers
// pings and refuses writes, and Ready says so until it takes writes again.
func TestReadyNeedsACommit(t *testing.T) {
	t.Parallel()
	dsn := storekit.PostgresDSN(t)
	db, err := sqlstore.Open(context.Background(), dsn, sqlstore.Config{Keys: storekit.Keys})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Ready(ctx); err != nil {
		t.Fatalf("Ready on a working database: %v", err)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	readOnly := func(on bool) {
		t.Helper()
		stmt := `ALTER DATABASE ` + currentDatabase(t, admin) + ` SET default_transaction_read_only = on`
		if !on {
			stmt = `ALTER DATABASE ` + currentDatabase(t, admin) + ` RESET default_transaction_read_only`
		}
		if _, err := admin.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
		// The setting holds for new sessions: end the store's.
		if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
	}
	waitReady := func(want string) error {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			err := db.Ready(ctx)
			if herald.ErrorCode(err) == want {
				return err
			}
			if time.Now().After(deadline) {
				t.Fatalf("Ready = %v, want code %q within 15s", err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	readOnly(true)
	err = waitReady(herald.EUNAVAILABLE)
	t.Logf("read-only: %v", err)
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping on the read-only database = %v; it answers, so only a write tells", err)
	}
	readOnly(false)
	waitReady("")
}

func currentDatabase(t *testing.T, db *sql.DB) string {
	t.Helper()
	var name string
	if err := db.QueryRow(`SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}
