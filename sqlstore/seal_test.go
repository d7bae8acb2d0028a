package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/keyring"
	"github.com/heraldhooks/herald/sqlstore"
)

// sealTarget is a database to test sealing on: its DSN for the store and
// a raw connection that reads what is really stored.
type sealTarget struct {
	dsn string
	raw *sql.DB
}

func sealTargets(t *testing.T) map[string]func(t *testing.T) sealTarget {
	return map[string]func(t *testing.T) sealTarget{
		"sqlite": func(t *testing.T) sealTarget {
			path := filepath.Join(t.TempDir(), "herald.db")
			raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
			must(t, err)
			t.Cleanup(func() { raw.Close() })
			return sealTarget{dsn: "sqlite:" + path, raw: raw}
		},
		"postgres": func(t *testing.T) sealTarget {
			dsn := storekit.PostgresDSN(t)
			raw, err := sql.Open("pgx", dsn)
			must(t, err)
			t.Cleanup(func() { raw.Close() })
			return sealTarget{dsn: dsn, raw: raw}
		},
	}
}

func ring(t *testing.T, keys ...string) *keyring.Ring {
	t.Helper()
	r, err := keyring.Parse(strings.Join(keys, ","))
	must(t, err)
	return r
}

func openWith(t *testing.T, dsn string, keys *keyring.Ring) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn, sqlstore.Config{Keys: keys})
	must(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

const (
	headerSecret = "receiver-key-123"
	querySecret  = "qp-secret-456"
	urlSecret    = "url-token-789"
)

// keyBody is part of the base64 body of a PEM key, past the header every
// key of its kind shares: what must not be found in the database.
func keyBody(pemKey []byte) string {
	lines := strings.Split(strings.TrimSpace(string(pemKey)), "\n")
	return strings.Join(lines[1:len(lines)-1], "")[48:88]
}

// setupSecrets makes webhook "wh" of acme/live with a secret header, a
// secret query parameter, a token in its URL and a TLS client certificate,
// and returns its signing secret and client key.
func setupSecrets(t *testing.T, db *sqlstore.DB) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	setup(t, db)
	u := "https://example.com/hooks/" + urlSecret
	pair := heraldtest.NewCA(t).Issue(t, "herald-client")
	cert, key := string(pair.CertPEM), string(pair.KeyPEM)
	_, err := db.UpdateWebhook(ctx, "acme", "live", "wh", herald.WebhookUpdate{URL: &u,
		Headers:           &[]herald.NameValue{{Name: "Authorization", Value: "Bearer " + headerSecret}},
		QueryParameters:   &[]herald.NameValue{{Name: "key", Value: querySecret}},
		ClientCertificate: &cert, ClientKey: &key})
	must(t, err)
	secrets, err := db.WebhookSecrets(ctx, "acme", "live", "wh")
	must(t, err)
	return secrets[0].Secret, pair.KeyPEM
}

// rawText returns every row of the tables holding secrets as text, as an
// attacker with a copy of the database would read them.
func rawText(t *testing.T, raw *sql.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"webhooks", "webhook_secrets", "settings", "api_clients"} {
		rows, err := raw.Query(`SELECT * FROM ` + table)
		must(t, err)
		cols, err := rows.Columns()
		must(t, err)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			must(t, rows.Scan(ptrs...))
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%v\t", v)
			}
			b.WriteString("\n")
		}
		must(t, rows.Err())
		rows.Close()
	}
	return b.String()
}

func TestSecretsSealedAtRest(t *testing.T) {
	t.Parallel()
	for name, target := range sealTargets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := target(t)
			db := openWith(t, tg.dsn, storekit.Keys)
			secret, clientKey := setupSecrets(t, db)
			_, err := db.RotateWebhookSecret(context.Background(), "acme", "live", "wh", time.Hour)
			must(t, err)

			stored := rawText(t, tg.raw)
			for _, s := range []string{secret, strings.TrimPrefix(secret, "whsec_"), headerSecret, querySecret, urlSecret, "whsec_", keyBody(clientKey), "PRIVATE KEY"} {
				if strings.Contains(stored, s) {
					t.Errorf("the database holds %q in the clear", s)
				}
			}
			if !strings.Contains(stored, "hk1."+storekit.Keys.ID()+".") {
				t.Fatalf("no value sealed under the key:\n%s", stored)
			}

			// The store opens them again.
			w, err := db.GetWebhook(context.Background(), "acme", "live", "wh")
			must(t, err)
			if w.Headers[0].Value != "Bearer "+headerSecret || w.QueryParameters[0].Value != querySecret || !strings.HasSuffix(w.URL, urlSecret) ||
				string(w.ClientKey) != string(clientKey) {
				t.Fatalf("webhook read back as %+v", w)
			}
			secrets, err := db.WebhookSecrets(context.Background(), "acme", "live", "wh")
			must(t, err)
			if len(secrets) != 2 || secrets[1].Secret != secret {
				t.Fatalf("secrets read back as %+v, want the new one then %s", secrets, secret)
			}
		})
	}
}

func TestWrongMasterKeyRefused(t *testing.T) {
	t.Parallel()
	for name, target := range sealTargets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := target(t)
			a, b := keyring.Generate(), keyring.Generate()
			db, err := sqlstore.Open(context.Background(), tg.dsn, sqlstore.Config{Keys: ring(t, a)})
			must(t, err)
			setupSecrets(t, db)
			db.Close()

			_, err = sqlstore.Open(context.Background(), tg.dsn, sqlstore.Config{Keys: ring(t, b)})
			if herald.ErrorCode(err) != herald.EINVALID || !strings.Contains(herald.ErrorMessage(err), "master key does not match this database") ||
				!strings.Contains(herald.ErrorMessage(err), ring(t, a).ID()) {
				t.Fatalf("open with another key: %v, want EINVALID naming the key the database needs", err)
			}
			if strings.Contains(err.Error(), a) || strings.Contains(err.Error(), b) {
				t.Fatalf("the error shows a master key: %v", err)
			}
			// Both keys, the new one first: the old secrets open.
			db = openWith(t, tg.dsn, ring(t, b, a))
			w, err := db.GetWebhook(context.Background(), "acme", "live", "wh")
			must(t, err)
			if w.Headers[0].Value != "Bearer "+headerSecret {
				t.Fatalf("header read back as %+v", w.Headers)
			}
		})
	}
}

func TestRewrap(t *testing.T) {
	t.Parallel()
	for name, target := range sealTargets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := target(t)
			a, b := keyring.Generate(), keyring.Generate()
			db, err := sqlstore.Open(context.Background(), tg.dsn, sqlstore.Config{Keys: ring(t, a)})
			must(t, err)
			secret, _ := setupSecrets(t, db)
			db.Close()

			db, err = sqlstore.Open(context.Background(), tg.dsn, sqlstore.Config{Keys: ring(t, b, a)})
			must(t, err)
			var reports []sqlstore.RewrapProgress
			stats, err := db.Rewrap(context.Background(), func(p sqlstore.RewrapProgress) { reports = append(reports, p) })
			must(t, err)
			// One webhook row and one secret row, each sealed anew.
			if stats.Rows != 2 || stats.Resealed != 2 || stats.KeyID != ring(t, b).ID() {
				t.Fatalf("Rewrap = %+v, want 2 rows resealed under %s", stats, ring(t, b).ID())
			}
			if len(reports) == 0 || reports[len(reports)-1].Done != reports[len(reports)-1].Total {
				t.Fatalf("progress reports %+v", reports)
			}
			if again, err := db.Rewrap(context.Background(), nil); err != nil || again.Resealed != 0 {
				t.Fatalf("second Rewrap = %+v, %v; want nothing left to do", again, err)
			}
			if stored := rawText(t, tg.raw); strings.Contains(stored, "hk1."+ring(t, a).ID()) {
				t.Fatalf("a value is still sealed under the old key:\n%s", stored)
			}
			db.Close()

			// The old key can go.
			db = openWith(t, tg.dsn, ring(t, b))
			w, err := db.GetWebhook(context.Background(), "acme", "live", "wh")
			must(t, err)
			secrets, err := db.WebhookSecrets(context.Background(), "acme", "live", "wh")
			must(t, err)
			if w.Headers[0].Value != "Bearer "+headerSecret || w.QueryParameters[0].Value != querySecret || secrets[0].Secret != secret {
				t.Fatalf("after rewrap: %+v %+v", w, secrets)
			}
		})
	}
}

// TestPlainSecretsSealedAtOpen is an upgrade: a database written before
// secrets were sealed has them in the clear, and no key check.
func TestPlainSecretsSealedAtOpen(t *testing.T) {
	t.Parallel()
	for name, target := range sealTargets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := target(t)
			db := openWith(t, tg.dsn, storekit.Keys)
			setup(t, db)
			w, err := db.GetWebhook(context.Background(), "acme", "live", "wh")
			must(t, err)
			db.Close()
			// As an earlier version stored them.
			for _, stmt := range []string{
				`UPDATE webhooks SET url = 'https://example.com/` + urlSecret + `', headers = '[{"name":"Authorization","value":"Bearer ` + headerSecret + `"}]', query_parameters = '[]'`,
				`UPDATE webhook_secrets SET secret = 'whsec_b2xkLXNlY3JldA=='`,
				`DELETE FROM settings WHERE name = 'key_check'`,
			} {
				if _, err := tg.raw.Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}

			db = openWith(t, tg.dsn, storekit.Keys)
			stored := rawText(t, tg.raw)
			for _, s := range []string{headerSecret, urlSecret, "whsec_b2xkLXNlY3JldA=="} {
				if strings.Contains(stored, s) {
					t.Errorf("%q is still in the clear after open", s)
				}
			}
			got, err := db.GetWebhook(context.Background(), "acme", "live", "wh")
			must(t, err)
			secrets, err := db.WebhookSecrets(context.Background(), "acme", "live", "wh")
			must(t, err)
			if got.ID != w.ID || got.Headers[0].Value != "Bearer "+headerSecret || secrets[0].Secret != "whsec_b2xkLXNlY3JldA==" {
				t.Fatalf("after sealing: %+v %+v", got, secrets)
			}
		})
	}
}

// TestSealedValueBoundToItsRow: a sealed value copied into another row (an
// attacker with write access to the database moving a secret where it
// would be sent) does not open there.
func TestSealedValueBoundToItsRow(t *testing.T) {
	t.Parallel()
	tg := sealTargets(t)["sqlite"](t)
	db := openWith(t, tg.dsn, storekit.Keys)
	setupSecrets(t, db)
	ctx := context.Background()
	must(t, db.CreateDesignerWebhook(ctx, "acme", &herald.DesignerWebhook{Name: "other", Title: "Other", Triggers: []herald.Trigger{{EventEntity: "PATIENT"}}}))
	_, err := db.Publish(ctx, "acme", "", "")
	must(t, err)
	if _, err := tg.raw.Exec(`UPDATE webhooks SET headers = (SELECT headers FROM webhooks WHERE name = 'wh') WHERE name = 'other'`); err != nil {
		t.Fatal(err)
	}
	_, err = db.GetWebhook(ctx, "acme", "live", "other")
	if err == nil || strings.Contains(err.Error(), headerSecret) {
		t.Fatalf("GetWebhook of the row holding another row's sealed headers: %v, want an error that shows nothing", err)
	}
	if errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("error says the key is unknown; want it to say the value does not open: %v", err)
	}
}
