package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest/storekit"
)

// marker stands for health data in the requests below; it must never reach
// the log.
const marker = "MARKER-Jane-Doe"

// TestLogsHoldNoHealthData sends the real binary refused events whose
// values hold the marker, an accepted event about a patient, that
// patient's erasure and a 900 KB path, and reads its log in both formats:
// no marker, and no more than 256 bytes of any path.
func TestLogsHoldNoHealthData(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			p := startHerald(t, nil, append(sqliteArgs(t), "--log-format", format, "--log-level", "debug")...)
			c := p.client(t)
			recv := newReceiver(t)
			inst, secret := setupWebhook(t, c, recv.URL+"/hook")
			recv.SetSecrets(secret)

			for _, body := range []string{
				`{"eventSubtype":"PATIENT_CREATED","occurredAt":"` + marker + `"}`,
				`{"eventSubtype":"` + marker + `"}`,
				`{"eventSubtype":"PATIENT_CREATED","` + marker + `":1}`,
				`{"eventSubtype":"PATIENT_CREATED","tenantName":"` + marker + `"}`,
				`[{"eventSubtype":"PATIENT_CREATED","initiatedTime":42,"sourceName":"` + marker + `"}]`,
			} {
				if status := rawRequest(t, c, "POST", inst+"/events", body); status != http.StatusBadRequest {
					t.Errorf("refused event answered %d, want 400: %s", status, body)
				}
			}
			var res struct{ EventID string }
			mustDo(t, c, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "patientId": marker,
				"sourceName": marker, "data": map[string]string{"name": marker}}, &res)
			recv.WaitDelivered(t, 30*time.Second, res.EventID)
			mustDo(t, c, "POST", inst+"/patients/"+marker+"/purge", nil, nil)
			rawRequest(t, c, "GET", inst+"/deliveries?"+marker+"=1", "")
			rawRequest(t, c, "GET", "/v1/"+strings.Repeat("a", 900<<10), "")
			rawRequest(t, c, "GET", "/ui/"+strings.Repeat("a", 900<<10), "")

			waitLog(t, p, "patient purged", 10*time.Second)
			logs := p.logs.String()
			if strings.Contains(logs, marker) {
				t.Errorf("the log holds health data:\n%s", cutLines(logs, marker))
			}
			if run := longestRun(logs, 'a'); run > 256 {
				t.Errorf("the log holds %d bytes of one path, want at most 256", run)
			}
			if format == "json" {
				for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
					if strings.HasPrefix(line, "{") && !json.Valid([]byte(line)) {
						t.Errorf("log line is not JSON: %.200s", line)
					}
				}
			}
		})
	}
}

// rawRequest sends body as it is (not JSON-encoded) with c's token and
// returns the status.
func rawRequest(t *testing.T, c *apiClient, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// longestRun is the length of the longest run of b in s.
func longestRun(s string, b byte) int {
	best, n := 0, 0
	for i := range len(s) {
		if s[i] == b {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

// cutLines returns the lines of s that contain sub, each cut short.
func cutLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l[:min(len(l), 300)])
		}
	}
	return strings.Join(out, "\n")
}

// A password in the database URL appears nowhere Herald writes: not when
// the URL is malformed, not when the database does not answer, not when
// it runs.
func TestDatabasePasswordIsNeverPrinted(t *testing.T) {
	const pw = "Pw-Marker-7f3a"
	for _, dsn := range []string{
		"postgres://herald:" + pw + "@127.0.0.1:1/herald?connect_timeout=2",
		"postgres://herald:" + pw + " x@127.0.0.1:1/herald",
		"postgres://herald@127.0.0.1:1/herald?connect_timeout=2&password=" + pw,
		"postgress://herald:" + pw + " x@127.0.0.1/herald",
	} {
		cmd := exec.Command(heraldBin, "serve", "--listen", "127.0.0.1:0", "--database", dsn)
		cmd.Env = append(os.Environ(), "HERALD_MASTER_KEY="+testMasterKey)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("serve on an unreachable database exited 0:\n%s", out)
		}
		if strings.Contains(string(out), pw) {
			t.Errorf("serve printed the database password:\n%s", out)
		}
	}
	// Running: PostgreSQL trusts the test connection, so any password does.
	dsn := strings.Replace(storekit.PostgresDSN(t), "postgres://postgres@", "postgres://postgres:"+pw+"@", 1)
	if !strings.Contains(dsn, pw) {
		t.Fatalf("test DSN %s does not start with postgres://postgres@", dsn)
	}
	p := startHerald(t, []string{"HERALD_MAINTENANCE_INTERVAL=200ms"}, "--database", dsn, "--log-level", "debug")
	waitLog(t, p, "maintenance done", 10*time.Second)
	p.stop()
	if strings.Contains(p.logs.String(), pw) {
		t.Errorf("serve printed the database password:\n%s", cutLines(p.logs.String(), pw))
	}
	if !strings.Contains(p.logs.String(), "postgres:xxxxx@") {
		t.Errorf("serve does not name its database, password masked:\n%s", p.logs)
	}
}

// Herald's SQLite files are the owner's alone, whatever the umask it runs
// with. Not parallel: the umask is the process's, inherited by the child.
func TestSQLiteFilesArePrivate(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "data", "herald.db")
	old := syscall.Umask(0)
	p := startHerald(t, nil, "--database", "sqlite:"+path)
	syscall.Umask(old)
	c := p.client(t)
	mustDo(t, c, "POST", "/v1/tenants", map[string]any{"name": "acme"}, nil)
	for name, want := range map[string]os.FileMode{
		"data": 0o700, "data/herald.db": 0o600, "data/herald.db-wal": 0o600, "data/herald.db-shm": 0o600,
		"data/herald.db.lock": 0o600, "data/master.key": 0o600,
	} {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Errorf("%v", err)
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s is %04o, want %04o", name, fi.Mode().Perm(), want)
		}
	}
}

// A second node cannot start on a running node's SQLite database under
// another name: a symlink to the file, or to its directory.
func TestSymlinkCannotStartSecondNode(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	startHerald(t, nil, "--database", "sqlite:"+filepath.Join(dir, "herald.db"))
	if err := os.Symlink(filepath.Join(dir, "herald.db"), filepath.Join(root, "link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(root, "alias")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--database", "sqlite:" + filepath.Join(root, "link.db"), "--master-key-file", filepath.Join(dir, "master.key")},
		{"--database", "sqlite:" + filepath.Join(root, "alias", "herald.db")},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, heraldBin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "in use by another Herald process") {
			t.Errorf("second node with %v: %v, want it refused as in use:\n%s", args[1], err, out)
		}
	}
}

// /readyz answers 503 while the SQLite database cannot commit (its disk is
// full) and 200 once it can again; events are refused with a 503 that says
// the disk is full, every one accepted arrives, and ingest resumes.
func TestReadyzWhileSQLiteCannotCommit(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("this test fills a tmpfs, and mounting one needs root: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	p := startHerald(t, nil, "--database", "sqlite:"+filepath.Join(dir, "herald.db"), "--allow-private-destinations")
	c := p.client(t)
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)
	waitReadyz(t, p, http.StatusOK)

	fill := filepath.Join(dir, "fill")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // ENOSPC
		}
	}
	for _, size := range []int{4096, 512, 1} { // the last few bytes too
		for {
			if _, err := f.Write(chunk[:size]); err != nil {
				break
			}
		}
	}
	f.Close()
	// Writes go on; sooner or later one needs room the disk no longer has.
	// Every event that got a 202 meanwhile must arrive; the refused ones
	// get a 503 that says why.
	var accepted []string
	var refusal string
	deadline := time.Now().Add(30 * time.Second)
	for readyz(t, p) != http.StatusServiceUnavailable || refusal == "" {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still 200, or no event refused, 30s after the disk filled up:\n%s", p.logs)
		}
		var res struct {
			Events []struct{ EventID string }
		}
		code, err := c.do(context.Background(), "POST", inst+"/events", []map[string]any{
			{"eventSubtype": "PATIENT_CREATED", "sourceName": strings.Repeat("x", 2000)},
			{"eventSubtype": "PATIENT_CREATED", "sourceName": strings.Repeat("y", 2000)}}, &res)
		switch {
		case err == nil:
			for _, e := range res.Events {
				accepted = append(accepted, e.EventID)
			}
		case code == http.StatusServiceUnavailable:
			refusal = err.Error()
		default:
			t.Fatalf("a full disk answered %d: %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(refusal, "the disk holding the database is full") {
		t.Errorf("the 503 of a full disk does not say so: %s", refusal)
	}
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, p, http.StatusOK)
	var res struct{ EventID string }
	mustDo(t, c, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "after"}, &res)
	recv.WaitDelivered(t, 60*time.Second, append(accepted, res.EventID)...)
	t.Logf("%d events accepted while the disk filled up, all delivered once it had room; the refusal said: %s", len(accepted), refusal)
}

func readyz(t *testing.T, p *proc) int {
	t.Helper()
	resp, err := http.Get(p.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReadyz polls /readyz until it answers want, or fails after 10s.
func waitReadyz(t *testing.T, p *proc, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for readyz(t, p) != want {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer %d within 10s:\n%s", want, p.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
