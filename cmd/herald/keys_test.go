package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/keyring"
)

// serveFails runs `herald serve` with env and args and returns what it
// printed; the test fails unless it exits non-zero within 30 seconds.
func serveFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, heraldBin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(append(os.Environ(), "HERALD_ADMIN_SECRET="+testAdminSecret), env...)
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("herald serve %v started (or hung) with %v; want it to refuse:\n%s", args, env, out)
	}
	return string(out)
}

// runHerald runs a herald command to completion and returns its output,
// failing the test if it fails.
func runHerald(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := runHeraldResult(t, env, args...)
	if err != nil {
		t.Fatalf("herald %v: %v\n%s", args, err, out)
	}
	return out
}

// runHeraldResult runs a herald command to completion and returns its
// output and how it exited.
func runHeraldResult(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, heraldBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("herald %v did not finish within 60s:\n%s", args, out)
	}
	return string(out), err
}

const (
	receiverKey = "receiver-key-123"
	querySecret = "qp-secret-456"
	pathSecret  = "url-path-token-789" // receivers like Slack take the credential in the path
)

// setupSecretWebhook is setupWebhook plus a secret header and query
// parameter, and one event delivered and verified with the secret.
func setupSecretWebhook(t *testing.T, c *apiClient, recv *heraldtest.Receiver) (inst, secret string) {
	t.Helper()
	inst, secret = setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)
	mustDo(t, c, "PATCH", inst+"/webhooks/wh-patient-sync", map[string]any{
		"url":             recv.URL + "/hook" + "/" + pathSecret,
		"headers":         []map[string]string{{"name": "Authorization", "value": "Bearer " + receiverKey}},
		"queryParameters": []map[string]string{{"name": "key", "value": querySecret}},
	}, nil)
	deliverOne(t, c, recv, inst)
	return inst, secret
}

// deliverOne posts an event and waits until the receiver has it, verified.
func deliverOne(t *testing.T, c *apiClient, recv *heraldtest.Receiver, inst string) {
	t.Helper()
	var res struct{ EventID string }
	mustDo(t, c, "POST", inst+"/events", map[string]any{"eventEntity": "PATIENT", "eventSubtype": "PATIENT_CREATED",
		"sourceId": "p-1", "patientId": "p-1"}, &res)
	recv.WaitDelivered(t, 15*time.Second, res.EventID)
	bad := recv.SignatureFailures()
	if bad > 0 {
		t.Fatalf("the receiver got %d requests it could not verify", bad)
	}
}

// mustNotHold fails if data holds any of the secrets.
func mustNotHold(t *testing.T, where string, data []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("%s holds %q in the clear", where, s)
		}
	}
}

// TestSecretsNotInTheClear: a copy of the database (its SQLite files, WAL
// included, or the contents of every PostgreSQL table) holds none of the
// secrets Herald was given.
func TestSecretsNotInTheClear(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		p := startHerald(t, nil, "--database", "sqlite:"+filepath.Join(dir, "herald.db"), "--allow-private-destinations")
		c := p.client(t)
		recv := newReceiver(t)
		_, secret := setupSecretWebhook(t, c, recv)
		secrets := []string{secret, strings.TrimPrefix(secret, "whsec_"), receiverKey, querySecret, pathSecret, testAdminSecret}

		readAll := func(when string) {
			files, err := filepath.Glob(filepath.Join(dir, "herald.db*"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no database files in %s: %v", dir, err)
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				mustNotHold(t, filepath.Base(f)+" "+when, b, secrets...)
			}
		}
		// The checkpointer copies the WAL into the file every 250 ms.
		time.Sleep(600 * time.Millisecond)
		readAll("while running")
		p.stop()
		readAll("after shutdown")
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := storekit.PostgresDSN(t)
		p := startHerald(t, nil, "--database", dsn, "--allow-private-destinations")
		c := p.client(t)
		recv := newReceiver(t)
		_, secret := setupSecretWebhook(t, c, recv)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.RawQuery = "sslmode=disable" // pg_dump takes no session settings in the URL
		dump, err := exec.Command("pg_dump", "--data-only", "--dbname", u.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("pg_dump: %v\n%s", err, dump)
		}
		if !bytes.Contains(dump, []byte("wh-patient-sync")) {
			t.Fatalf("pg_dump holds no webhook; is it the right database?\n%s", dump)
		}
		mustNotHold(t, "pg_dump", dump, secret, strings.TrimPrefix(secret, "whsec_"), receiverKey, querySecret, pathSecret, testAdminSecret)
	})
}

// TestForgedTokenRefused: whoever holds a copy of the database cannot mint
// a token from what is in it.
func TestForgedTokenRefused(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	p := startHerald(t, nil, "--database", "sqlite:"+db, "--allow-private-destinations")
	c := p.client(t)
	recv := newReceiver(t)
	setupSecretWebhook(t, c, recv)

	// Every value in every table, as stored and decoded from hex and
	// base64, is a candidate signing key.
	raw, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var material [][]byte
	tables, err := raw.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	for _, table := range names {
		rows, err := raw.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			for _, v := range vals {
				s := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					s = string(b)
				}
				material = append(material, []byte(s))
				for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '"' || r == ',' || r == ':' }) {
					material = append(material, []byte(part))
					if b, err := hex.DecodeString(part); err == nil {
						material = append(material, b)
					}
					for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
						if b, err := enc.DecodeString(part); err == nil {
							material = append(material, b)
						}
					}
				}
			}
		}
		rows.Close()
	}
	if len(material) < 50 {
		t.Fatalf("only %d candidate keys read from the database", len(material))
	}

	// The real token names the key ID and holds the admin's claims; a
	// forger copies them, makes the token live for ten years, and signs it
	// with every candidate.
	parts := strings.Split(c.token, ".")
	if len(parts) != 4 || parts[0] != "v3" {
		t.Fatalf("token %q is not v3.<key id>.<payload>.<mac>", c.token)
	}
	kid := parts[1]
	material = append(material, []byte(kid))
	claimsJSON, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(claimsJSON, &claims); err != nil {
		t.Fatal(err)
	}
	claims["exp"] = time.Now().Add(10 * 365 * 24 * time.Hour).Unix()
	forgedClaims, _ := json.Marshal(claims)
	payload := base64.RawURLEncoding.EncodeToString(forgedClaims)
	forged := 0
	for _, key := range material {
		for _, msg := range []string{"v3." + kid + "." + payload, "v2." + kid + "." + payload, "v1." + payload} {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(msg))
			tok := msg + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
			req, _ := http.NewRequest("GET", p.URL+"/v1/tenants", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("a token signed with a value from the database got %d", resp.StatusCode)
			}
			forged++
		}
	}
	t.Logf("%d forged tokens refused", forged)
	// The real token still works: the refusals were not for another reason.
	mustDo(t, c, "GET", "/v1/tenants", nil, nil)
}

// TestMasterKeyMustMatch: the key file is made private beside the
// database on first start, and a start with any other key is refused.
func TestMasterKeyMustMatch(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--database", "sqlite:" + filepath.Join(dir, "herald.db"), "--allow-private-destinations"}
	p := startHerald(t, nil, args...)
	keyFile := filepath.Join(dir, "master.key")
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("no master key file beside the database: %v\n%s", err, p.logs)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("master.key has mode %04o, want 0600", info.Mode().Perm())
	}
	if !strings.Contains(p.logs.String(), "created a new master key") || !strings.Contains(p.logs.String(), keyFile) {
		t.Errorf("no warning naming the new key file:\n%s", p.logs)
	}
	c := p.client(t)
	recv := newReceiver(t)
	setupSecretWebhook(t, c, recv)
	p.stop()

	out := serveFails(t, []string{"HERALD_MASTER_KEY=" + keyring.Generate()}, args...)
	if !strings.Contains(out, "master key does not match this database") {
		t.Errorf("start with another key: want it to say the key does not match, got:\n%s", out)
	}
	if err := os.Rename(keyFile, keyFile+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	out = serveFails(t, nil, args...)
	if !strings.Contains(out, "its master key file") || !strings.Contains(out, "does not") {
		t.Errorf("start without the key file: want it to say the key file is missing, got:\n%s", out)
	}
	if err := os.Rename(keyFile+".elsewhere", keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if out = serveFails(t, nil, args...); !strings.Contains(out, "chmod 600") {
		t.Errorf("start with a readable key file: want it refused, got:\n%s", out)
	}
	os.Chmod(keyFile, 0o600)

	// PostgreSQL needs the key given.
	out = serveFails(t, nil, "--database", storekit.PostgresDSN(t))
	if !strings.Contains(out, "a master key is required with PostgreSQL") || !strings.Contains(out, "herald keys generate") {
		t.Errorf("PostgreSQL without a key: got:\n%s", out)
	}
	if out = serveFails(t, []string{"HERALD_ADMIN_SECRET=short-secret"}, args...); !strings.Contains(out, "at least 16") {
		t.Errorf("a 12-character admin secret: got:\n%s", out)
	}
}

// TestMasterKeyRotation: secrets written under key A; the nodes restart
// with B,A; keys rewrap runs beside them; they restart with B alone; every
// webhook still delivers, verified with the secret it had from the start.
func TestMasterKeyRotation(t *testing.T) {
	a, b := keyring.Generate(), keyring.Generate()
	t.Run("postgres", func(t *testing.T) {
		dsn := storekit.PostgresDSN(t)
		args := []string{"--database", dsn, "--allow-private-destinations"}
		p := startHerald(t, []string{"HERALD_MASTER_KEY=" + a}, args...)
		c := p.client(t)
		recv := newReceiver(t)
		inst, _ := setupSecretWebhook(t, c, recv)
		tokenA := c.token
		p.stop()

		p = startHerald(t, []string{"HERALD_MASTER_KEY=" + b + "," + a}, args...)
		// A token signed under A stays valid while A is in the ring.
		old := newAPIClient(p.URL)
		old.token = tokenA
		mustDo(t, old, "GET", "/v1/tenants", nil, nil)
		c = p.client(t)
		deliverOne(t, c, recv, inst)
		out := runHerald(t, []string{"HERALD_MASTER_KEY=" + b + "," + a}, "keys", "rewrap", "--database", dsn)
		if !strings.Contains(out, "webhook_secrets: 1 of 1 rows") || !strings.Contains(out, "audit_log: ") || !strings.Contains(out, " sealed anew") {
			t.Errorf("keys rewrap printed:\n%s", out)
		}
		deliverOne(t, c, recv, inst) // the running node reads what rewrap wrote
		p.stop()

		p = startHerald(t, []string{"HERALD_MASTER_KEY=" + b}, args...)
		deliverOne(t, p.client(t), recv, inst)
		old = newAPIClient(p.URL)
		old.token = c.token // signed under B: still valid
		mustDo(t, old, "GET", "/v1/tenants", nil, nil)
		old.token = tokenA
		if _, err := old.do(context.Background(), "GET", "/v1/tenants", nil, nil); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("a token signed under the dropped key A: %v, want 401", err)
		}
		p.stop()
		if out := serveFails(t, []string{"HERALD_MASTER_KEY=" + a}, args...); !strings.Contains(out, "master key does not match") {
			t.Errorf("start with the old key alone after rewrap: got:\n%s", out)
		}
	})
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		db := "sqlite:" + filepath.Join(dir, "herald.db")
		args := []string{"--database", db, "--allow-private-destinations"}
		p := startHerald(t, []string{"HERALD_MASTER_KEY=" + a}, args...)
		c := p.client(t)
		recv := newReceiver(t)
		inst, _ := setupSecretWebhook(t, c, recv)
		p.stop()
		runHerald(t, []string{"HERALD_MASTER_KEY=" + b + "," + a}, "keys", "rewrap", "--database", db)
		p = startHerald(t, []string{"HERALD_MASTER_KEY=" + b}, args...)
		deliverOne(t, p.client(t), recv, inst)
	})
}

func TestKeysGenerate(t *testing.T) {
	out := strings.TrimSpace(runHerald(t, nil, "keys", "generate"))
	r, err := keyring.Parse(out)
	if err != nil || len(r.IDs()) != 1 {
		t.Fatalf("keys generate printed %q: %v", out, err)
	}
	if again := strings.TrimSpace(runHerald(t, nil, "keys", "generate")); again == out {
		t.Fatal("keys generate printed the same key twice")
	}
}

// TestUpgradeFromUnsealedDatabase: a SQLite database written before Herald
// sealed secrets has no key file and no key check; the first start makes
// it a key and seals what it holds, instead of refusing it, and the
// webhook goes on delivering, signed with the secret it had.
func TestUpgradeFromUnsealedDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	args := []string{"--database", "sqlite:" + db, "--allow-private-destinations"}
	p := startHerald(t, nil, args...)
	c := p.client(t)
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)
	p.stop()
	// As an earlier version left it: every secret in the clear, no key
	// check, no key file.
	raw, err := sql.Open("sqlite", db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE webhooks SET url = '` + recv.URL + "/hook" + `', headers = '[{"name":"Authorization","value":"Bearer ` + receiverKey + `"}]', query_parameters = '[]', client_key = ''`,
		`UPDATE webhook_secrets SET secret = '` + secret + `'`,
		`DELETE FROM audit_log`,
		`DELETE FROM settings WHERE name = 'key_check'`,
	} {
		if _, err := raw.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	if err := os.Remove(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}

	p = startHerald(t, nil, args...)
	if !strings.Contains(p.logs.String(), "created a new master key") || !strings.Contains(p.logs.String(), "sealed secrets that were stored in the clear") {
		t.Fatalf("the upgrade start does not say it made a key and sealed the plain values:\n%s", p.logs)
	}
	deliverOne(t, p.client(t), recv, inst)
	p.stop()
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	mustNotHold(t, "herald.db after the upgrade", b, receiverKey, secret)
}
