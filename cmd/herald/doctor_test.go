package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
)

// TestDoctor runs herald doctor on a good configuration and on broken
// ones: each problem is a FAIL line in its area that names the fix, and
// the command fails; a good one passes without warnings. Doctor changes
// nothing: it neither makes a database nor a key file.
func TestDoctor(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "herald.db")
	admin := "HERALD_ADMIN_SECRET=" + testAdminSecret

	t.Run("new database, nothing made", func(t *testing.T) {
		fresh := filepath.Join(t.TempDir(), "data", "herald.db")
		out := runHerald(t, []string{admin}, "doctor", "--database", "sqlite:"+fresh, "--listen", "127.0.0.1:0")
		wantLine(t, out, "ok", "database", "does not exist yet")
		wantLine(t, out, "ok", "master key", "serve creates master.key")
		if _, err := os.Stat(filepath.Dir(fresh)); !os.IsNotExist(err) {
			t.Errorf("doctor made %s: %v", filepath.Dir(fresh), err)
		}
	})

	p := startHerald(t, nil, "--database", db)
	p.stop()

	t.Run("good", func(t *testing.T) {
		out := runHerald(t, []string{admin}, "doctor", "--database", db, "--listen", "127.0.0.1:0")
		wantLine(t, out, "ok", "database", "is migrated")
		wantLine(t, out, "ok", "master key", "opens the database's secrets")
		wantLine(t, out, "ok", "listen", "is free")
		if !strings.Contains(out, "No problem found.") {
			t.Errorf("a good configuration got warnings or problems:\n%s", out)
		}
	})

	t.Run("wrong master key", func(t *testing.T) {
		other := strings.TrimSpace(runHerald(t, nil, "keys", "generate"))
		out := doctorFails(t, []string{admin, "HERALD_MASTER_KEY=" + other}, "--database", db, "--listen", "127.0.0.1:0")
		wantLine(t, out, "FAIL", "master key", "does not match this database")
		wantLine(t, out, "FAIL", "master key", "herald keys rewrap")
	})

	t.Run("expired certificate", func(t *testing.T) {
		ca := heraldtest.NewCA(t)
		pair := ca.IssueBetween(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), "herald.test", "127.0.0.1")
		cert, key := pair.WriteFiles(t, t.TempDir())
		out := doctorFails(t, []string{admin}, "--database", db, "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
		wantLine(t, out, "FAIL", "tls", "expired on")
		wantLine(t, out, "FAIL", "tls", "Renew it")
	})

	t.Run("certificate about to expire", func(t *testing.T) {
		ca := heraldtest.NewCA(t)
		pair := ca.IssueBetween(t, time.Now().Add(-time.Hour), time.Now().Add(5*24*time.Hour), "herald.test", "127.0.0.1")
		cert, key := pair.WriteFiles(t, t.TempDir())
		out := runHerald(t, []string{admin}, "doctor", "--database", db, "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
		wantLine(t, out, "warn", "tls", "expires in")
	})

	t.Run("listen address taken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out := doctorFails(t, []string{admin}, "--database", db, "--listen", ln.Addr().String())
		wantLine(t, out, "FAIL", "listen", "choose another --listen")
	})

	t.Run("database does not answer", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		out := doctorFails(t, []string{admin, "HERALD_MASTER_KEY=" + testMasterKey},
			"--database", "postgres://postgres:hunter2@"+addr+"/herald", "--listen", "127.0.0.1:0")
		wantLine(t, out, "FAIL", "database", "does not answer")
		wantLine(t, out, "FAIL", "database", "PostgreSQL runs")
		if strings.Contains(out, "hunter2") {
			t.Errorf("doctor printed the database password:\n%s", out)
		}
	})
}

// doctorFails runs herald doctor and fails the test unless it fails.
func doctorFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := runHeraldResult(t, env, append([]string{"doctor"}, args...)...)
	if err == nil {
		t.Fatalf("herald doctor %v passed; want it to fail:\n%s", args, out)
	}
	return out
}

// wantLine fails unless out has a line of doctor's report at level, in
// area, holding text.
func wantLine(t *testing.T, out, level, area, text string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == level && strings.HasPrefix(strings.TrimSpace(line[len(f[0]):]), area) && strings.Contains(line, text) {
			return
		}
	}
	t.Errorf("no %q line in %s holding %q:\n%s", level, area, text, out)
}
