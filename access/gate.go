package access

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/keyring"
)

// Store is what the Gate keeps in the database; herald.Store implements it.
type Store interface {
	CreateAPIClient(ctx context.Context, c *herald.APIClient) error
	GetAPIClient(ctx context.Context, tenant, name string) (*herald.APIClient, error)
	APIClientsNamed(ctx context.Context, name string) ([]*herald.APIClient, error)
	APIClientStates(ctx context.Context) ([]*herald.APIClient, error)
	RotateAPIClientSecret(ctx context.Context, tenant, name, hash, id string, grace time.Duration) (*herald.APIClient, error)
	RehashAPIClientSecret(ctx context.Context, tenant, name, old, new string) (bool, error)
	SetAPIClientDisabled(ctx context.Context, tenant, name string, disabled bool) (*herald.APIClient, error)
	DeleteAPIClient(ctx context.Context, tenant, name string) error
	herald.AuthService
	herald.UserService
}

// Config configures a Gate. Store and Keys are required.
type Config struct {
	// Store keeps API clients, revoked tokens and request counts. Required.
	Store Store
	// Keys is the master key ring that token signing keys are derived
	// from. Required.
	Keys *keyring.Ring
	// Audit receives sign-ins, refused sign-ins and lockouts (the first
	// refusal of a client name or address past its limit). Nil records
	// none.
	Audit herald.AuditService
	// Logger receives refused token requests (WARN: client name and source
	// address, never the secret) and state refresh failures. Defaults to a
	// logger that discards everything.
	Logger *slog.Logger
	// Now is the clock of token issue and expiry, grace periods, rate-limit
	// windows and state refreshes. Defaults to time.Now.
	Now func() time.Time
	// TokenTTL is how long a token is valid. Defaults to 1h.
	TokenTTL time.Duration
	// Refresh is how old the state of clients and revoked tokens may get
	// before a token check re-reads it. Defaults to 2s.
	Refresh time.Duration
	// MaxStale is how old that state may get, when the database does not
	// answer, before token checks fail with EUNAVAILABLE. Defaults to 5s;
	// at least Refresh.
	MaxStale time.Duration
	// LimitPerClient is how many token requests may name one client in a
	// window. Defaults to 100.
	LimitPerClient int
	// LimitPerAddress is how many token requests may come from one source
	// address in a window. Defaults to 1000.
	LimitPerAddress int
	// LimitWindow is the window of both limits. Defaults to 5m.
	LimitWindow time.Duration

	// SessionIdle ends a person's web UI session that has not been used
	// for this long. Defaults to 15m.
	SessionIdle time.Duration
	// SessionMax ends a session this long after sign-in, however busy.
	// Defaults to 12h.
	SessionMax time.Duration
	// SetupTTL is how long an invited person's setup link works.
	// Defaults to 72h.
	SetupTTL time.Duration
	// LockAfter is how many failed sign-ins in a row lock a person's
	// account. Defaults to 10.
	LockAfter int
	// LockFor is how long a locked account refuses sign-ins, even with
	// the right password. Defaults to 15m.
	LockFor time.Duration
}

// Gate is the door of both the API and the web UI: it exchanges API client
// credentials for tokens (within the rate limits), checks tokens against
// the current state of their clients and the revoked tokens, and carries
// out the life cycle of credentials (create, rotate, disable, enable,
// delete, revoke), so that the two doors can never disagree. It is safe for
// concurrent use.
type Gate struct {
	store  Store
	audit  herald.AuditService // nil: sign-ins are not audited
	log    *slog.Logger
	now    func() time.Time
	tokens *tokens
	state  *state
	limits *limiter

	sessionIdle, sessionMax, setupTTL, lockFor time.Duration
	lockAfter                                  int
}

// New returns a Gate, or an error naming the Config field that is wrong.
func New(cfg Config) (*Gate, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("access: Config.Store is required")
	case cfg.Keys == nil:
		return nil, errors.New("access: Config.Keys is required")
	case cfg.TokenTTL < 0, cfg.Refresh < 0, cfg.MaxStale < 0, cfg.LimitWindow < 0,
		cfg.SessionIdle < 0, cfg.SessionMax < 0, cfg.SetupTTL < 0, cfg.LockFor < 0, cfg.LockAfter < 0:
		return nil, errors.New("access: Config durations must not be negative")
	case cfg.LimitPerClient < 0, cfg.LimitPerAddress < 0:
		return nil, errors.New("access: Config.LimitPerClient and LimitPerAddress must not be negative")
	}
	if cfg.Now == nil { // funcs are not comparable, so no cmp.Or here
		cfg.Now = time.Now
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cfg.TokenTTL = cmp.Or(cfg.TokenTTL, time.Hour)
	cfg.Refresh = cmp.Or(cfg.Refresh, 2*time.Second)
	cfg.MaxStale = cmp.Or(cfg.MaxStale, 5*time.Second)
	cfg.LimitPerClient = cmp.Or(cfg.LimitPerClient, 100)
	cfg.LimitPerAddress = cmp.Or(cfg.LimitPerAddress, 1000)
	cfg.LimitWindow = cmp.Or(cfg.LimitWindow, 5*time.Minute)
	cfg.SessionIdle = cmp.Or(cfg.SessionIdle, 15*time.Minute)
	cfg.SessionMax = cmp.Or(cfg.SessionMax, 12*time.Hour)
	cfg.SetupTTL = cmp.Or(cfg.SetupTTL, 72*time.Hour)
	cfg.LockAfter = cmp.Or(cfg.LockAfter, 10)
	cfg.LockFor = cmp.Or(cfg.LockFor, 15*time.Minute)
	if cfg.MaxStale < cfg.Refresh {
		return nil, errors.New("access: Config.MaxStale must be at least Config.Refresh")
	}
	purge := &purger{store: cfg.Store, log: cfg.Logger, window: cfg.LimitWindow, idle: cfg.SessionIdle, maxAge: cfg.SessionMax}
	g := &Gate{
		store:  cfg.Store,
		audit:  cfg.Audit,
		log:    cfg.Logger,
		now:    cfg.Now,
		tokens: newTokens(cfg.Keys, cfg.Now, cfg.TokenTTL),
		state: &state{store: cfg.Store, now: cfg.Now, log: cfg.Logger, refresh: cfg.Refresh,
			maxStale: cfg.MaxStale, purge: purge},
		limits: &limiter{store: cfg.Store, now: cfg.Now, log: cfg.Logger, perClient: cfg.LimitPerClient,
			perAddress: cfg.LimitPerAddress, window: cfg.LimitWindow, purge: purge, blocked: map[string]time.Time{}},
		sessionIdle: cfg.SessionIdle, sessionMax: cfg.SessionMax, setupTTL: cfg.SetupTTL, lockFor: cfg.LockFor, lockAfter: cfg.LockAfter,
	}
	g.limits.onBlock = func(ctx context.Context, key, address string, until time.Time) {
		kind, name, _ := strings.Cut(key, ":")
		diff, _ := json.Marshal(map[string]string{"until": until.UTC().Format(time.RFC3339)})
		g.record(ctx, &herald.AuditEntry{ActorType: herald.ActorAPIClient, Actor: name, Source: sourceHost(address),
			Action: "auth.locked", Target: kind + " " + name, Diff: diff})
	}
	return g, nil
}

// record appends a security event to the audit trail, when there is one.
// A failed append is logged: the request it records has been answered.
func (g *Gate) record(ctx context.Context, e *herald.AuditEntry) {
	if g.audit == nil {
		return
	}
	if err := g.audit.AppendAudit(ctx, e); err != nil {
		g.log.ErrorContext(ctx, "a sign-in's audit entry was not written", "action", e.Action, "err", err)
	}
}

// sourceHost is the host of a remote address ("127.0.0.1:5000").
func sourceHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// TTL returns how long an issued token is valid.
func (g *Gate) TTL() time.Duration { return g.tokens.ttl }

// MAC returns the base64url HMAC-SHA256 of msg under a key derived from the
// master key, for values derived from a token that must not be forgeable (a
// form's CSRF token). Callers should prefix msg with what it is for, so a
// MAC for one purpose is never valid for another.
func (g *Gate) MAC(msg string) string { return sign(g.tokens.mac, msg) }

// Credentials are what a token request presents.
type Credentials struct {
	// Client is the API client's name.
	Client string
	// Tenant, when not empty, is the client's tenant; otherwise the client
	// is looked for in every tenant and the platform, and found by its
	// secret.
	Tenant string
	// Secret is the client's secret.
	Secret string
	// Address is the request's source, the TCP peer (http.Request's
	// RemoteAddr): rate limits count per address.
	Address string
}

// Grant is a token issued for credentials.
type Grant struct {
	Token     string
	ExpiresAt time.Time
	Client    *herald.APIClient
}

// ErrBadCredentials is the EUNAUTHORIZED error of a token request whose
// client name or secret is wrong: it does not say which.
var ErrBadCredentials = herald.Errorf(herald.EUNAUTHORIZED, "The API client name or secret is wrong.")

// Exchange checks credentials and returns a new token for their client.
// Errors: ERATELIMITED, with RetryAfter, when the client name or the
// address made too many token requests in the window, whatever the secret;
// ErrBadCredentials when no client of that name has that secret;
// EUNAUTHORIZED saying so when the client is disabled (said only to
// whoever shows its secret); EUNAVAILABLE when the database is down.
//
// An exchange costs one argon2id hash whatever it finds: an unknown name,
// a wrong secret, a secret of a client that shares its name with clients
// of other tenants. Refusals are logged at WARN with the client name (when
// it is a valid name at all) and the address, never the secret.
func (g *Gate) Exchange(ctx context.Context, cr Credentials) (*Grant, error) {
	if herald.ValidateName("apiClient", cr.Client) != nil || (cr.Tenant != "" && herald.ValidateName("tenant", cr.Tenant) != nil) {
		// No client has such a name: nothing to hash. It counts against the
		// address only, and is not logged: it may be a secret typed into
		// the wrong field.
		if err := g.limits.admit(ctx, "", cr.Address); err != nil {
			return nil, err
		}
		g.log.WarnContext(ctx, "token request refused: not a valid client or tenant name", "address", cr.Address)
		return nil, ErrBadCredentials
	}
	if err := g.limits.admit(ctx, cr.Client, cr.Address); err != nil {
		return nil, err
	}
	c, gen, err := g.check(ctx, cr)
	if err != nil {
		if code := herald.ErrorCode(err); code == herald.EUNAUTHORIZED {
			g.log.WarnContext(ctx, "token request refused", "client", cr.Client, "tenant", cr.Tenant,
				"address", cr.Address, "reason", herald.ErrorMessage(err))
			diff, _ := json.Marshal(map[string]string{"reason": herald.ErrorMessage(err)})
			g.record(ctx, &herald.AuditEntry{ActorType: herald.ActorAPIClient, Actor: cr.Client, Source: sourceHost(cr.Address),
				Tenant: cr.Tenant, Action: "auth.sign-in.failed", Target: "api-client " + cr.Client, Diff: diff})
		}
		return nil, err
	}
	g.record(ctx, &herald.AuditEntry{ActorType: herald.ActorAPIClient, Actor: c.Name, ActorTenant: c.Tenant, Role: c.Role,
		Source: sourceHost(cr.Address), Tenant: c.Tenant, Action: "auth.sign-in", Target: "api-client " + c.Name})
	// A token is never older than its client's TokensValidFrom, even when
	// this node's clock is behind the one that set it.
	issued := g.now()
	if c.TokensValidFrom != nil && issued.Before(*c.TokensValidFrom) {
		issued = *c.TokensValidFrom
	}
	tok, cl, err := g.tokens.issue(c, gen, issued)
	if err != nil {
		return nil, err
	}
	return &Grant{Token: tok, ExpiresAt: time.Unix(cl.Expires, 0).UTC(), Client: c}, nil
}

// check finds the client that cr's secret belongs to, and the generation
// of that secret: the current one, or the one before while in its grace.
func (g *Gate) check(ctx context.Context, cr Credentials) (*herald.APIClient, int, error) {
	named, err := g.store.APIClientsNamed(ctx, cr.Client)
	if err != nil {
		return nil, 0, err
	}
	// The candidates are the hashes whose lookup id is the secret's: one,
	// as a rule, so the exchange costs one hash. Secrets without an id
	// (the admin's, those of earlier versions) are checked against the
	// hashes without one, which names shared across tenants never have
	// more than one of but by accident.
	id := secretID(cr.Secret)
	type candidate struct {
		c        *herald.APIClient
		hash     string
		previous bool
	}
	var cands []candidate
	for _, c := range named {
		if cr.Tenant != "" && c.Tenant != cr.Tenant {
			continue
		}
		if c.SecretID == id {
			cands = append(cands, candidate{c, c.SecretHash, false})
		}
		if c.PreviousSecretHash != "" && c.PreviousSecretID == id {
			cands = append(cands, candidate{c, c.PreviousSecretHash, true})
		}
	}
	if len(cands) == 0 {
		if _, _, err := checkSecret(ctx, cr.Secret, decoyHash); err != nil {
			return nil, 0, err
		}
		return nil, 0, ErrBadCredentials
	}
	for _, cd := range cands {
		ok, legacy, err := checkSecret(ctx, cr.Secret, cd.hash)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			continue
		}
		c := cd.c
		if c.Disabled {
			return nil, 0, herald.Errorf(herald.EUNAUTHORIZED, "API client %q%s is disabled; an admin of its tenant can enable it again.", c.Name, ofTenant(c.Tenant))
		}
		if cd.previous {
			return c, c.Generation - 1, nil
		}
		if legacy {
			g.rehash(ctx, c, cr.Secret)
		}
		return c, c.Generation, nil
	}
	return nil, 0, ErrBadCredentials
}

// rehash replaces a client's SHA-256 hash from an earlier version with an
// argon2id hash of the same secret, now that the secret was shown. A
// failure only means the next exchange tries again.
func (g *Gate) rehash(ctx context.Context, c *herald.APIClient, secret string) {
	h, err := hashSecret(ctx, secret)
	if err == nil {
		_, err = g.store.RehashAPIClientSecret(ctx, c.Tenant, c.Name, c.SecretHash, h)
	}
	if err != nil {
		g.log.WarnContext(ctx, "could not replace an API client's SHA-256 secret hash with argon2id; the next token exchange tries again",
			"client", c.Name, "tenant", c.Tenant, "err", err)
		return
	}
	g.log.InfoContext(ctx, "replaced an API client's SHA-256 secret hash with argon2id", "client", c.Name, "tenant", c.Tenant)
}

// Verify returns the principal a token stands for. EUNAUTHORIZED saying
// why when the token is malformed, forged or expired, was revoked, or its
// client was deleted, is disabled, or had its secret rotated (past the
// grace period of the secret the token was issued for); EUNAVAILABLE when
// the state of clients cannot be read.
func (g *Gate) Verify(ctx context.Context, token string) (*herald.Principal, error) {
	c, err := g.tokens.parse(token)
	if err != nil {
		return nil, err
	}
	snap, err := g.state.current(ctx)
	if err != nil {
		return nil, err
	}
	if issued := time.UnixMilli(c.Issued); !snap.knows(c.ClientID) && issued.After(snap.at.Add(-clockSkew)) {
		// The client may be newer than the snapshot: made after it was
		// read, on this node or another.
		if snap, err = g.state.newer(ctx, issued); err != nil {
			return nil, err
		}
	}
	if err := snap.check(c, g.now()); err != nil {
		return nil, err
	}
	return c.principal(), nil
}

// Revoke revokes the token p was verified from, on every node within the
// refresh interval and on this one at once.
func (g *Gate) Revoke(ctx context.Context, p *herald.Principal) error {
	if p == nil || p.TokenID == "" {
		return herald.Errorf(herald.EUNAUTHORIZED, "There is no token to revoke.")
	}
	if err := g.store.RevokeToken(ctx, p.TokenID, p.ExpiresAt); err != nil {
		return err
	}
	g.state.invalidate()
	return nil
}

// CreateClient creates an API client of tenant and returns it with its
// secret, which is shown this once. EINVALID naming the field when the name
// is not a slug or the role is not one a tenant's client can have;
// ECONFLICT if the tenant has a client of that name; ENOTFOUND for an
// unknown tenant.
func (g *Gate) CreateClient(ctx context.Context, tenant, name string, role herald.Role) (*herald.APIClient, string, error) {
	if err := herald.ValidateName("name", name); err != nil {
		return nil, "", err
	}
	switch {
	case role == "":
		return nil, "", herald.FieldErrorf("role", "role is required: one of admin, designer, producer, viewer.")
	case role == herald.RolePlatformAdmin:
		return nil, "", herald.FieldErrorf("role", "role platform-admin is not bound to a tenant, so it cannot be created under one; use admin, designer, producer or viewer.")
	case !role.Valid():
		return nil, "", herald.FieldErrorf("role", "role %q is not a role; use admin, designer, producer or viewer.", role)
	}
	secret, id := newSecret()
	hash, err := hashSecret(ctx, secret)
	if err != nil {
		return nil, "", err
	}
	c := &herald.APIClient{Name: name, Tenant: tenant, Role: role, SecretHash: hash, SecretID: id}
	if err := g.store.CreateAPIClient(ctx, c); err != nil {
		return nil, "", err
	}
	g.state.invalidate()
	return c, secret, nil
}

// RotateClient gives a client a new secret, returned this once. Its
// current secret, and the tokens issued for it, keep working for grace (not
// at all when grace is 0); a secret still in the grace of an earlier
// rotation, and its tokens, stop at once. ENOTFOUND naming the tenant or
// the client.
func (g *Gate) RotateClient(ctx context.Context, tenant, name string, grace time.Duration) (*herald.APIClient, string, error) {
	secret, id := newSecret()
	hash, err := hashSecret(ctx, secret)
	if err != nil {
		return nil, "", err
	}
	c, err := g.store.RotateAPIClientSecret(ctx, tenant, name, hash, id, grace)
	if err != nil {
		return nil, "", err
	}
	g.state.invalidate()
	return c, secret, nil
}

// SetClientDisabled disables a client, which ends its tokens and refuses
// it new ones, or enables it again; the tokens it had stay void. Returns the
// client; ENOTFOUND naming the tenant or the client.
func (g *Gate) SetClientDisabled(ctx context.Context, tenant, name string, disabled bool) (*herald.APIClient, error) {
	c, err := g.store.SetAPIClientDisabled(ctx, tenant, name, disabled)
	if err != nil {
		return nil, err
	}
	g.state.invalidate()
	return c, nil
}

// DeleteClient deletes a client, and its tokens with it. ENOTFOUND naming
// the tenant or the client.
func (g *Gate) DeleteClient(ctx context.Context, tenant, name string) error {
	if err := g.store.DeleteAPIClient(ctx, tenant, name); err != nil {
		return err
	}
	g.state.invalidate()
	return nil
}

// AdminClient is the name of the platform API client whose secret is
// HERALD_ADMIN_SECRET.
const AdminClient = "admin"

// AdminChange is what EnsureAdmin did.
type AdminChange string

// What EnsureAdmin may do.
const (
	AdminCreated   AdminChange = "created"   // there was no admin client
	AdminChanged   AdminChange = "changed"   // the secret was another: the admin's earlier tokens no longer work
	AdminUnchanged AdminChange = "unchanged" // the secret was this one
)

// EnsureAdmin makes the platform client "admin" have secret: it creates
// the client, or, when its stored hash does not match secret, gives it
// secret as a new generation without grace, so the tokens issued for the
// earlier secret stop working; when the hash matches, it changes nothing
// (but for replacing a hash of an earlier version with argon2id).
func (g *Gate) EnsureAdmin(ctx context.Context, secret string) (AdminChange, error) {
	for attempt := 0; ; attempt++ {
		c, err := g.store.GetAPIClient(ctx, "", AdminClient)
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			hash, err := hashSecret(ctx, secret)
			if err != nil {
				return "", err
			}
			err = g.store.CreateAPIClient(ctx, &herald.APIClient{Name: AdminClient, Role: herald.RolePlatformAdmin,
				SecretHash: hash, SecretID: secretID(secret)})
			if herald.ErrorCode(err) == herald.ECONFLICT && attempt == 0 {
				continue // another node, starting too, created it: check its hash
			}
			if err != nil {
				return "", err
			}
			return AdminCreated, nil
		} else if err != nil {
			return "", err
		}
		ok, legacy, err := checkSecret(ctx, secret, c.SecretHash)
		if err != nil {
			return "", err
		}
		if ok {
			if legacy {
				g.rehash(ctx, c, secret)
			}
			return AdminUnchanged, nil
		}
		hash, err := hashSecret(ctx, secret)
		if err != nil {
			return "", err
		}
		if _, err := g.store.RotateAPIClientSecret(ctx, "", AdminClient, hash, secretID(secret), 0); err != nil {
			return "", err
		}
		g.state.invalidate()
		return AdminChanged, nil
	}
}
