package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/storetest"
)

// env is a Gate on a real SQLite store, both on one test clock, with
// tenants acme and globex.
type env struct {
	t     *testing.T
	ctx   context.Context
	clock *heraldtest.Clock
	store *sqlstore.DB
	gate  *Gate
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func mustEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	clock := heraldtest.NewClock(storetest.Epoch)
	store := storekit.OpenSQLite(t, sqlstore.Config{Now: clock.Now})
	logs := &syncBuffer{}
	cfg.Store, cfg.Keys, cfg.Now = store, storekit.Keys, clock.Now
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), clock: clock, store: store, gate: g, logs: logs}
	for _, tn := range []string{"acme", "globex"} {
		if _, err := store.CreateTenant(e.ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) create(tenant, name string, role herald.Role) string {
	e.t.Helper()
	_, secret, err := e.gate.CreateClient(e.ctx, tenant, name, role)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

func (e *env) exchange(cr Credentials) (*Grant, error) {
	if cr.Address == "" {
		cr.Address = "127.0.0.1:4242"
	}
	return e.gate.Exchange(e.ctx, cr)
}

func (e *env) mustExchange(cr Credentials) *Grant {
	e.t.Helper()
	g, err := e.exchange(cr)
	if err != nil {
		e.t.Fatalf("exchange for %s/%s: %v", cr.Tenant, cr.Client, err)
	}
	return g
}

// wantCode fails unless err has code and, when given, a message holding msg.
func wantCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	if herald.ErrorCode(err) != code || !strings.Contains(herald.ErrorMessage(err), msg) {
		t.Fatalf("error %v, want %s saying %q", err, code, msg)
	}
}

// TestExchangeFindsTheClientBySecret: two tenants' clients share a name;
// the name alone and either secret gets that tenant's client, and the
// optional tenant narrows the search.
func TestExchangeFindsTheClientBySecret(t *testing.T) {
	e := mustEnv(t, Config{})
	acme := e.create("acme", "ehr-sync", herald.RoleProducer)
	globex := e.create("globex", "ehr-sync", herald.RoleViewer)
	for _, tc := range []struct {
		secret, tenant, want string
		role                 herald.Role
	}{
		{acme, "", "acme", herald.RoleProducer},
		{globex, "", "globex", herald.RoleViewer},
		{acme, "acme", "acme", herald.RoleProducer},
	} {
		g := e.mustExchange(Credentials{Client: "ehr-sync", Tenant: tc.tenant, Secret: tc.secret})
		p, err := e.gate.Verify(e.ctx, g.Token)
		if err != nil || p.Tenant != tc.want || p.Role != tc.role || p.Client != "ehr-sync" {
			t.Fatalf("token for %s's secret stands for %+v (%v)", tc.want, p, err)
		}
	}
	_, err := e.exchange(Credentials{Client: "ehr-sync", Tenant: "globex", Secret: acme})
	if err != ErrBadCredentials {
		t.Fatalf("acme's secret with tenant globex: %v, want ErrBadCredentials", err)
	}
	for _, cr := range []Credentials{
		{Client: "ehr-sync", Secret: "hsk_wrong"},
		{Client: "nobody", Secret: acme},
		{Client: "Not A Name", Secret: acme},
		{Client: "ehr-sync", Tenant: "Not A Tenant", Secret: acme},
	} {
		if _, err := e.exchange(cr); err != ErrBadCredentials {
			t.Errorf("exchange %+v: %v, want ErrBadCredentials", cr, err)
		}
	}
}

// TestExchangeDoesTheSameWork: whatever the exchange finds, it computes
// one argon2id hash, so its time tells nothing about which names exist.
func TestExchangeDoesTheSameWork(t *testing.T) {
	e := mustEnv(t, Config{})
	secret := e.create("acme", "ehr-sync", herald.RoleProducer)
	e.create("globex", "ehr-sync", herald.RoleProducer)
	sum := sha256.Sum256([]byte("hsk_legacy"))
	if err := e.store.CreateAPIClient(e.ctx, &herald.APIClient{Name: "old", Tenant: "acme", Role: herald.RoleViewer, SecretHash: hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gate.EnsureAdmin(e.ctx, "a-platform-admin-secret"); err != nil {
		t.Fatal(err)
	}
	other, _ := newSecret()
	for _, tc := range []struct {
		name string
		cr   Credentials
	}{
		{"unknown name", Credentials{Client: "nobody", Secret: secret}},
		{"wrong secret of a shared name", Credentials{Client: "ehr-sync", Secret: other}},
		{"right secret of a shared name", Credentials{Client: "ehr-sync", Secret: secret}},
		{"a secret without an id against a name whose secrets have one", Credentials{Client: "ehr-sync", Secret: "hsk_short"}},
		{"wrong secret of a SHA-256 hash", Credentials{Client: "old", Secret: "hsk_nope"}},
		{"wrong admin secret", Credentials{Client: "admin", Secret: "not-the-admin-secret"}},
		{"right admin secret", Credentials{Client: "admin", Secret: "a-platform-admin-secret"}},
	} {
		before := hashes.Load()
		_, _ = e.exchange(tc.cr)
		if n := hashes.Load() - before; n != 1 {
			t.Errorf("%s: %d argon2id hashes, want 1", tc.name, n)
		}
	}
}

// TestLegacyHashesVerifyAndAreReplaced: a SHA-256 hash of an earlier
// version still lets its client in, and is replaced by argon2id then,
// without ending the client's tokens.
func TestLegacyHashesVerifyAndAreReplaced(t *testing.T) {
	e := mustEnv(t, Config{})
	secret := "hsk_" + strings.Repeat("x", 43) // the shape of earlier versions' secrets
	sum := sha256.Sum256([]byte(secret))
	if err := e.store.CreateAPIClient(e.ctx, &herald.APIClient{Name: "old", Tenant: "acme", Role: herald.RoleProducer, SecretHash: hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	g := e.mustExchange(Credentials{Client: "old", Secret: secret})
	c, err := e.store.GetAPIClient(e.ctx, "acme", "old")
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(c.SecretHash) || c.Generation != 1 {
		t.Fatalf("after the exchange the stored hash is %q (generation %d), want argon2id of generation 1", c.SecretHash, c.Generation)
	}
	if _, err := e.gate.Verify(e.ctx, g.Token); err != nil {
		t.Fatalf("the token issued before the rehash: %v", err)
	}
	e.mustExchange(Credentials{Client: "old", Secret: secret})
	if !strings.Contains(e.logs.String(), "replaced an API client's SHA-256 secret hash with argon2id") {
		t.Errorf("the rehash was not logged:\n%s", e.logs)
	}
}

// TestTokensEndWithTheirClient checks every way a token ends before it
// expires, on one node (the cluster test checks them across nodes).
func TestTokensEndWithTheirClient(t *testing.T) {
	e := mustEnv(t, Config{})
	token := func(name, secret string) string {
		t.Helper()
		return e.mustExchange(Credentials{Client: name, Secret: secret}).Token
	}
	verify := func(tok string) error {
		_, err := e.gate.Verify(e.ctx, tok)
		return err
	}

	del := token("gone", e.create("acme", "gone", herald.RoleViewer))
	if err := e.gate.DeleteClient(e.ctx, "acme", "gone"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, verify(del), herald.EUNAUTHORIZED, `API client "gone" of tenant acme was deleted`)
	// A client made again under the name does not take the old tokens.
	token("gone", e.create("acme", "gone", herald.RoleViewer))
	wantCode(t, verify(del), herald.EUNAUTHORIZED, "was deleted")

	secret := e.create("acme", "paused", herald.RoleViewer)
	paused := token("paused", secret)
	if _, err := e.gate.SetClientDisabled(e.ctx, "acme", "paused", true); err != nil {
		t.Fatal(err)
	}
	wantCode(t, verify(paused), herald.EUNAUTHORIZED, `API client "paused" of tenant acme is disabled`)
	_, err := e.exchange(Credentials{Client: "paused", Secret: secret})
	wantCode(t, err, herald.EUNAUTHORIZED, "is disabled")
	e.clock.Advance(time.Second)
	if _, err := e.gate.SetClientDisabled(e.ctx, "acme", "paused", false); err != nil {
		t.Fatal(err)
	}
	wantCode(t, verify(paused), herald.EUNAUTHORIZED, "was disabled after this token was issued")
	if err := verify(token("paused", secret)); err != nil {
		t.Fatalf("a token issued after enabling: %v", err)
	}

	old := e.create("acme", "rotated", herald.RoleViewer)
	before := token("rotated", old)
	_, fresh, err := e.gate.RotateClient(e.ctx, "acme", "rotated", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(before); err != nil {
		t.Fatalf("during the grace, a token of the old secret: %v", err)
	}
	during := token("rotated", old) // the old secret works during the grace, for that long
	newTok := token("rotated", fresh)
	e.clock.Advance(time.Minute) // the grace ends by time alone
	for _, tok := range []string{before, during} {
		wantCode(t, verify(tok), herald.EUNAUTHORIZED, `API client "rotated" of tenant acme had its secret rotated`)
	}
	if err := verify(newTok); err != nil {
		t.Fatalf("a token of the new secret: %v", err)
	}
	_, err = e.exchange(Credentials{Client: "rotated", Secret: old})
	if err != ErrBadCredentials {
		t.Fatalf("the old secret after the grace: %v", err)
	}
	// A second rotation during a grace ends the oldest secret at once.
	_, third, err := e.gate.RotateClient(e.ctx, "acme", "rotated", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err = e.gate.RotateClient(e.ctx, "acme", "rotated", time.Hour); err != nil {
		t.Fatal(err)
	}
	wantCode(t, verify(newTok), herald.EUNAUTHORIZED, "had its secret rotated")
	_, err = e.exchange(Credentials{Client: "rotated", Secret: fresh})
	if err != ErrBadCredentials {
		t.Fatalf("the secret two rotations ago: %v", err)
	}
	e.mustExchange(Credentials{Client: "rotated", Secret: third}) // the one before the current, in its grace

	revoked := token("rotated", third)
	p, err := e.gate.Verify(e.ctx, revoked)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.gate.Revoke(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	wantCode(t, verify(revoked), herald.EUNAUTHORIZED, "The bearer token was revoked")
}

// TestStateIsReadAgain: a change made behind this node's back (another
// node, the store directly) reaches it within Refresh; a client made
// after the snapshot is known at once.
func TestStateIsReadAgain(t *testing.T) {
	e := mustEnv(t, Config{Refresh: 2 * time.Second})
	secret := e.create("acme", "ehr-sync", herald.RoleProducer)
	tok := e.mustExchange(Credentials{Client: "ehr-sync", Secret: secret}).Token
	if _, err := e.gate.Verify(e.ctx, tok); err != nil {
		t.Fatal(err)
	}
	// Another node makes a client and a token: this node knows it at once.
	other, err := New(Config{Store: e.store, Keys: storekit.Keys, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, s2, err := other.CreateClient(e.ctx, "acme", "newer", herald.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	g, err := other.Exchange(e.ctx, Credentials{Client: "newer", Secret: s2, Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.gate.Verify(e.ctx, g.Token); err != nil {
		t.Fatalf("a client made on another node after this node's snapshot: %v", err)
	}
	// Another node deletes a client: this node sees it once its snapshot
	// is Refresh old, not before (it does not read at every request).
	if err := other.DeleteClient(e.ctx, "acme", "ehr-sync"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gate.Verify(e.ctx, tok); err != nil {
		t.Fatalf("within the refresh interval the old snapshot serves: %v", err)
	}
	e.clock.Advance(2 * time.Second)
	wantCode(t, func() error { _, err := e.gate.Verify(e.ctx, tok); return err }(), herald.EUNAUTHORIZED, "was deleted")
}

// TestStateFailsClosed: when the database stops answering, a node serves
// its last snapshot until it is MaxStale old, then refuses tokens.
func TestStateFailsClosed(t *testing.T) {
	e := mustEnv(t, Config{Refresh: time.Second, MaxStale: 3 * time.Second})
	secret := e.create("acme", "ehr-sync", herald.RoleProducer)
	tok := e.mustExchange(Credentials{Client: "ehr-sync", Secret: secret}).Token
	if _, err := e.gate.Verify(e.ctx, tok); err != nil {
		t.Fatal(err)
	}
	e.store.Close()
	e.clock.Advance(2 * time.Second)
	if _, err := e.gate.Verify(e.ctx, tok); err != nil {
		t.Fatalf("a snapshot 2s old, under MaxStale: %v", err)
	}
	e.clock.Advance(time.Second)
	_, err := e.gate.Verify(e.ctx, tok)
	wantCode(t, err, herald.EUNAVAILABLE, "database unavailable")
}

// TestRateLimits: past the per-client limit in a window a client's
// requests are refused, the right secret too, with when to retry; others
// are not; past the per-address limit every request from the address is;
// the next window starts afresh. Once over, a node stops counting in the
// database.
func TestRateLimits(t *testing.T) {
	e := mustEnv(t, Config{LimitPerClient: 3, LimitPerAddress: 6, LimitWindow: time.Minute})
	a := e.create("acme", "a", herald.RoleViewer)
	b := e.create("acme", "b", herald.RoleViewer)
	c := e.create("acme", "c", herald.RoleViewer)
	e.clock.Advance(10 * time.Second) // 50s left in the window
	for i := range 3 {
		secret := a
		if i == 1 {
			secret = "hsk_wrong"
		}
		_, _ = e.exchange(Credentials{Client: "a", Secret: secret})
	}
	_, err := e.exchange(Credentials{Client: "a", Secret: a})
	wantCode(t, err, herald.ERATELIMITED, `Too many token requests for API client "a": more than 3 in a minute. Try again after 2026-11-26T17:01:00Z (in 50 seconds).`)
	var he *herald.Error
	if !errors.As(err, &he) || he.RetryAfter != 50*time.Second {
		t.Fatalf("RetryAfter of %v, want 50s", err)
	}
	// The node remembers: more requests are refused without counting.
	for range 5 {
		_, err = e.exchange(Credentials{Client: "a", Secret: a})
		wantCode(t, err, herald.ERATELIMITED, "for API client \"a\"")
	}
	counts, err := e.store.CountAuthRequests(e.ctx, storetest.Epoch, "client:a")
	if err != nil {
		t.Fatal(err)
	}
	if counts[0] != 5 {
		t.Fatalf("client:a was counted %d times (with this look), want 5: refusals from memory must not write", counts[0])
	}
	// Another client from the same address is fine, until the address's
	// limit: 4 counted so far, 2 more allowed.
	e.mustExchange(Credentials{Client: "b", Secret: b})
	e.mustExchange(Credentials{Client: "b", Secret: b})
	_, err = e.exchange(Credentials{Client: "b", Secret: b})
	wantCode(t, err, herald.ERATELIMITED, "from address 127.0.0.1: more than 6 in a minute")
	// Another address is not; requests naming no valid client count
	// against it too.
	e.mustExchange(Credentials{Client: "c", Secret: c, Address: "127.0.0.2:5000"})
	for range 5 {
		if _, err := e.exchange(Credentials{Client: "Not A Name", Secret: "x", Address: "127.0.0.2:5000"}); err != ErrBadCredentials {
			t.Fatalf("an invalid name under the address's limit: %v", err)
		}
	}
	_, err = e.exchange(Credentials{Client: "Not A Name", Secret: "x", Address: "127.0.0.2:5000"})
	wantCode(t, err, herald.ERATELIMITED, "from address 127.0.0.2")
	// The next window starts afresh.
	e.clock.Advance(50 * time.Second)
	e.mustExchange(Credentials{Client: "a", Secret: a})
	if !strings.Contains(e.logs.String(), "token requests over the limit") {
		t.Errorf("going over the limit was not logged:\n%s", e.logs)
	}
}

// TestRefusalsAreLoggedWithoutTheSecret: a failed exchange is logged at
// WARN with the client name and the address, never the secret tried.
func TestRefusalsAreLoggedWithoutTheSecret(t *testing.T) {
	e := mustEnv(t, Config{})
	e.create("acme", "ehr-sync", herald.RoleProducer)
	tried := "hsk_guessed-secret-value"
	_, _ = e.exchange(Credentials{Client: "ehr-sync", Secret: tried, Address: "192.0.2.7:5555"})
	_, _ = e.exchange(Credentials{Client: tried, Secret: "x", Address: "192.0.2.7:5555"}) // a secret in the name field
	logs := e.logs.String()
	if strings.Contains(logs, "guessed-secret") {
		t.Fatalf("a secret tried reached the log:\n%s", logs)
	}
	if !strings.Contains(logs, `"level":"WARN","msg":"token request refused","client":"ehr-sync"`) || !strings.Contains(logs, `"address":"192.0.2.7:5555"`) {
		t.Fatalf("the refusal is not logged at WARN with client and address:\n%s", logs)
	}
}

// TestEnsureAdmin: the admin client is made, kept while the secret is the
// same, and given a new generation, ending its tokens, when it changes.
func TestEnsureAdmin(t *testing.T) {
	e := mustEnv(t, Config{})
	for _, tc := range []struct {
		secret string
		want   AdminChange
	}{
		{"first-admin-secret", AdminCreated},
		{"first-admin-secret", AdminUnchanged},
	} {
		got, err := e.gate.EnsureAdmin(e.ctx, tc.secret)
		if err != nil || got != tc.want {
			t.Fatalf("EnsureAdmin = %s, %v; want %s", got, err, tc.want)
		}
	}
	tok := e.mustExchange(Credentials{Client: "admin", Secret: "first-admin-secret"}).Token
	if got, err := e.gate.EnsureAdmin(e.ctx, "second-admin-secret"); err != nil || got != AdminChanged {
		t.Fatalf("EnsureAdmin with another secret = %s, %v", got, err)
	}
	_, err := e.gate.Verify(e.ctx, tok)
	wantCode(t, err, herald.EUNAUTHORIZED, "had its secret rotated")
	if _, err := e.exchange(Credentials{Client: "admin", Secret: "first-admin-secret"}); err != ErrBadCredentials {
		t.Fatalf("the old admin secret: %v", err)
	}
	e.mustExchange(Credentials{Client: "admin", Secret: "second-admin-secret"})
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":                  "address:127.0.0.1",
		"[::ffff:10.0.0.1]:80":            "address:10.0.0.1",
		"[::1]:8080":                      "address:::1",
		"[2001:db8:1:2:3:4:5:6]:443":      "address:2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1%eth0]:443": "address:2001:db8:1:2::/64",
		"not an address":                  "address:not an address",
		"[fe80::1%eth0]:1":                "address:fe80::/64",
		"203.0.113.9":                     "address:203.0.113.9",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOldRecordsArePurged: token requests alone (no token checks) purge
// the counts of past windows and expired revocations, now and then.
func TestOldRecordsArePurged(t *testing.T) {
	e := mustEnv(t, Config{LimitWindow: time.Minute})
	secret := e.create("acme", "a", herald.RoleViewer)
	g := e.mustExchange(Credentials{Client: "a", Secret: secret})
	e.mustExchange(Credentials{Client: "a", Secret: secret})
	p, err := e.gate.Verify(e.ctx, g.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.gate.Revoke(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour) // past the token's expiry, many windows on
	e.mustExchange(Credentials{Client: "a", Secret: secret})
	counts, err := e.store.CountAuthRequests(e.ctx, storetest.Epoch, "client:a")
	if err != nil {
		t.Fatal(err)
	}
	if counts[0] != 1 {
		t.Fatalf("the first window still counts %d requests (with this look), want it purged", counts[0]-1)
	}
	ids, err := e.store.RevokedTokens(e.ctx, storetest.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 0 {
		t.Fatalf("expired revocations were kept: %q", ids)
	}
}
