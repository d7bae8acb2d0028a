package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/heraldhooks/herald/keyring"
	"github.com/heraldhooks/herald/sqlstore"
)

// Master keys. HERALD_MASTER_KEY holds one or more base64 keys, newest
// first, comma-separated; --master-key-file names a file holding the same
// (comma- or line-separated). On SQLite without either, Herald keeps a key
// in master.key beside the database, created on first start; PostgreSQL
// serves several nodes, which must all have the same key, so there it must
// be given.

// masterKeyFileName is the key file Herald creates beside a SQLite database.
const masterKeyFileName = "master.key"

// loadKeys returns the master key ring for database. On SQLite without a
// key given, it reads master.key beside the database, or, when create is
// set and the database holds no secret sealed under another key (it is new,
// or written before Herald sealed secrets), creates that file; created is
// its path, for the warning the caller logs.
func loadKeys(ctx context.Context, database, keyFile string, create bool) (ring *keyring.Ring, created string, err error) {
	if spec := os.Getenv("HERALD_MASTER_KEY"); spec != "" {
		if keyFile != "" {
			return nil, "", errors.New("both HERALD_MASTER_KEY and --master-key-file are set; give the master key one way")
		}
		ring, err := keyring.Parse(spec)
		if err != nil {
			return nil, "", fmt.Errorf("HERALD_MASTER_KEY: %w", err)
		}
		return ring, "", nil
	}
	if keyFile != "" {
		return readKeyFile(keyFile)
	}
	path, ok := strings.CutPrefix(database, "sqlite:")
	if !ok {
		return nil, "", errors.New("a master key is required with PostgreSQL: every node must seal and open secrets with the same key. Make one with `herald keys generate` and give it to every node as HERALD_MASTER_KEY or in a file named by --master-key-file (keep it apart from database backups)")
	}
	file := filepath.Join(filepath.Dir(path), masterKeyFileName)
	ring, _, err = readKeyFile(file)
	if err == nil {
		return ring, "", nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	missing := fmt.Errorf("database %s exists but its master key file %s does not; restore the key file from where it was backed up, or give the key as HERALD_MASTER_KEY or --master-key-file", path, file)
	if existing, statErr := os.Stat(path); statErr == nil && existing.Size() > 0 {
		// A database sealed under a key that is not here: making a new
		// key would only lead to "the master key does not match"; say
		// what is missing. One written before Herald sealed secrets
		// gets its first key.
		sealed, err := sqlstore.SQLiteKeyChecked(ctx, path)
		if err != nil {
			return nil, "", fmt.Errorf("database %s: %w", path, err)
		}
		if sealed || !create {
			return nil, "", missing
		}
	} else if !create {
		return nil, "", missing
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, "", fmt.Errorf("create the master key file: %w", err)
	}
	key := keyring.Generate()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("create the master key file: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("write the master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("write the master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, "", fmt.Errorf("write the master key file: %w", err)
	}
	ring, err = keyring.Parse(key)
	return ring, file, err
}

// readKeyFile reads a master key file. It refuses a file that other users
// may read.
func readKeyFile(file string) (*keyring.Ring, string, error) {
	info, err := os.Stat(file)
	if err != nil {
		return nil, "", fmt.Errorf("master key file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("master key file %s can be read by other users (mode %04o); make it private with chmod 600 %s", file, info.Mode().Perm(), file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("master key file: %w", err)
	}
	ring, err := keyring.Parse(string(b))
	if err != nil {
		return nil, "", fmt.Errorf("master key file %s: %w", file, err)
	}
	return ring, "", nil
}

// warnKeyCreated tells the operator where the new master key is and why it
// matters.
func warnKeyCreated(logger *slog.Logger, file string) {
	logger.Warn("created a new master key; back it up apart from the database: without it the database's secrets cannot be read, and with it anyone holding a copy of the database can read them",
		"file", file)
}

// toolDatabase is the database a command other than serve opens, from its
// --database and --master-key-file flags, read as serve reads them.
type toolDatabase struct {
	dsn, keyFile *string
}

// databaseFlags defines --database (its help ending with note) and
// --master-key-file on fs.
func databaseFlags(fs *flag.FlagSet, note string) toolDatabase {
	return toolDatabase{
		dsn:     fs.String("database", envOr("HERALD_DATABASE", DefaultDatabase), "sqlite:<file> or postgres://... (env HERALD_DATABASE)"+note),
		keyFile: fs.String("master-key-file", envOr("HERALD_MASTER_KEY_FILE", ""), "file holding the master keys, newest first (or env HERALD_MASTER_KEY)"),
	}
}

// open loads the master keys (making the SQLite key file when create is
// set, as loadKeys does) and opens the store with them and cfg. created
// is the path of a key file made just now.
func (d toolDatabase) open(ctx context.Context, cfg sqlstore.Config, create bool) (store *sqlstore.DB, ring *keyring.Ring, created string, err error) {
	ring, created, err = loadKeys(ctx, *d.dsn, *d.keyFile, create)
	if err != nil {
		return nil, nil, "", err
	}
	cfg.Keys = ring
	store, err = sqlstore.Open(ctx, *d.dsn, cfg)
	if err != nil {
		return nil, nil, "", fmt.Errorf("open database %s: %w", sqlstore.RedactDSN(*d.dsn), err)
	}
	return store, ring, created, nil
}

const keysUsage = `Usage:
  herald keys generate              print a new master key (base64 of 32 random bytes)
  herald keys rewrap [flags]        seal every secret in the database under the newest master key

Rotating the master key, with no downtime:
  1. herald keys generate                       -> NEW
  2. restart every node with HERALD_MASTER_KEY=NEW,OLD (the newest first)
  3. herald keys rewrap --database ...          (with HERALD_MASTER_KEY=NEW,OLD)
  4. restart every node with HERALD_MASTER_KEY=NEW
`

// runKeys is `herald keys`.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys needs a subcommand: generate or rewrap")
	}
	switch args[0] {
	case "generate":
		if len(args) > 1 {
			return fmt.Errorf("keys generate takes no arguments, got %q", args[1:])
		}
		fmt.Fprintln(stdout, keyring.Generate())
		return nil
	case "rewrap":
		return runRewrap(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	fmt.Fprint(stderr, keysUsage)
	return fmt.Errorf("unknown keys subcommand %q", args[0])
}

func runRewrap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys rewrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := databaseFlags(fs, "")
	database, keyFile := db.dsn, db.keyFile
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("keys rewrap takes no arguments, got %q", fs.Args())
	}
	if os.Getenv("HERALD_MASTER_KEY") == "" && *keyFile == "" && !strings.HasPrefix(*database, "sqlite:") {
		return errors.New("keys rewrap needs the master keys, newest first: HERALD_MASTER_KEY=NEW,OLD or --master-key-file")
	}
	if path, ok := strings.CutPrefix(*database, "sqlite:"); ok {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("database %s: %w", path, err)
		}
	}
	store, ring, _, err := db.open(ctx, sqlstore.Config{}, false)
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Fprintf(stdout, "re-sealing every secret under master key %s\n", ring.ID())
	last := ""
	stats, err := store.Rewrap(ctx, func(p sqlstore.RewrapProgress) {
		line := fmt.Sprintf("  %s: %d of %d rows", p.Table, p.Done, p.Total)
		if line != last {
			fmt.Fprintln(stdout, line)
			last = line
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "done: %d rows looked at, %d sealed anew; every secret is sealed under %s, and older keys may be dropped once every node runs with it first\n",
		stats.Rows, stats.Resealed, stats.KeyID)
	return nil
}
