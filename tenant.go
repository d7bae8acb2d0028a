package herald

import (
	"context"
	"time"
)

// TenantService manages tenants, instances and API clients.
type TenantService interface {
	// CreateTenant creates a tenant. ECONFLICT if the name is taken.
	CreateTenant(ctx context.Context, name string) (*Tenant, error)
	// ListTenants returns every tenant sorted by name.
	ListTenants(ctx context.Context) ([]*Tenant, error)
	// GetTenant returns a tenant or ENOTFOUND.
	GetTenant(ctx context.Context, name string) (*Tenant, error)
	// CreateInstance creates an instance of a tenant; the tenant's published
	// webhooks appear in it, inactive, each with its own signing secret.
	// ENOTFOUND for an unknown tenant, ECONFLICT if the name is taken.
	CreateInstance(ctx context.Context, tenant, name string) (*Instance, error)
	// ListInstances returns the instances of a tenant sorted by name;
	// ENOTFOUND for an unknown tenant.
	ListInstances(ctx context.Context, tenant string) ([]*Instance, error)
	// GetInstance returns an instance or ENOTFOUND.
	GetInstance(ctx context.Context, tenant, name string) (*Instance, error)

	// CreateAPIClient stores a new client: Name, Tenant ("" for a platform
	// client), Role, SecretHash and SecretID set by the caller; it fills in
	// ID, CreatedAt and Generation 1. ECONFLICT if the tenant already has a
	// client of that name (a client of that name in another tenant is no
	// conflict, and the message names only this tenant); ENOTFOUND for an
	// unknown tenant.
	CreateAPIClient(ctx context.Context, c *APIClient) error
	// GetAPIClient returns the client name of tenant ("" for a platform
	// client). ENOTFOUND naming the tenant when it does not exist, or else
	// naming the client.
	GetAPIClient(ctx context.Context, tenant, name string) (*APIClient, error)
	// ListAPIClients returns the clients of a tenant sorted by name; tenant
	// "" lists the platform clients. ENOTFOUND for an unknown tenant.
	ListAPIClients(ctx context.Context, tenant string) ([]*APIClient, error)
	// APIClientsNamed returns every client called name, in any tenant and
	// the platform, for the token exchange (a token request need not name
	// the tenant). None is an empty list, not an error.
	APIClientsNamed(ctx context.Context, name string) ([]*APIClient, error)
	// APIClientStates returns every client, without secret hashes: what
	// the access layer checks tokens against.
	APIClientStates(ctx context.Context) ([]*APIClient, error)
	// RotateAPIClientSecret gives a client a new secret (its hash and
	// lookup id) and the next generation. The current secret stays valid
	// for grace (not at all when grace is 0), replacing any earlier one
	// still in its grace, which ends at once. Returns the client as
	// rotated; ENOTFOUND as GetAPIClient.
	RotateAPIClientSecret(ctx context.Context, tenant, name, hash, id string, grace time.Duration) (*APIClient, error)
	// RehashAPIClientSecret replaces the client's current secret hash old
	// with new, a stronger hash of the same secret; the generation stays.
	// It reports false, changing nothing, when the hash is no longer old
	// (the secret was rotated meanwhile). ENOTFOUND as GetAPIClient.
	RehashAPIClientSecret(ctx context.Context, tenant, name, old, new string) (bool, error)
	// SetAPIClientDisabled disables or enables a client and returns it.
	// Enabling sets TokensValidFrom to now, so the tokens it had before it
	// was disabled stay void. ENOTFOUND as GetAPIClient.
	SetAPIClientDisabled(ctx context.Context, tenant, name string, disabled bool) (*APIClient, error)
	// DeleteAPIClient deletes a client. ENOTFOUND as GetAPIClient.
	DeleteAPIClient(ctx context.Context, tenant, name string) error
}

// AuthService keeps what the access layers of all nodes share beyond API
// clients: revoked tokens, and the counts of token requests that rate
// limits are taken from.
type AuthService interface {
	// RevokeToken records that the token id is revoked. expiresAt is when
	// the token expires anyway, after which the record may go. Revoking a
	// token twice is no error.
	RevokeToken(ctx context.Context, id string, expiresAt time.Time) error
	// RevokedTokens returns the ids of the revoked tokens that expire after
	// now.
	RevokedTokens(ctx context.Context, now time.Time) ([]string, error)
	// CountAuthRequests adds one to the count of each key in the window
	// that starts at window, and returns the counts after the addition, in
	// the order of keys. The counts are shared by every node.
	CountAuthRequests(ctx context.Context, window time.Time, keys ...string) ([]int, error)
	// PurgeAuthRecords deletes the revoked tokens that expired at or
	// before now and the counts of windows that started before
	// windowsBefore. Returns how many rows went.
	PurgeAuthRecords(ctx context.Context, now, windowsBefore time.Time) (int, error)
}

// Maintenance is the housekeeping one leader runs.
type Maintenance interface {
	// PurgeFinished deletes, past retention, up to limit deliveries in a
	// final state (DELIVERED, FAILED, CANCELLED) last updated before before,
	// with their attempts; up to limit events created before before that
	// have no delivery left; and the attempt counts of minutes before
	// before. A delivery still owed (PENDING, SENT, RETRYING) is never
	// purged, and so neither is its event. It also folds the attempt
	// counts of each minute that is over into one row per webhook, which
	// changes no stats or timeline. Returns how many of each went;
	// a caller with a backlog calls again while Deliveries or Events
	// reaches limit.
	PurgeFinished(ctx context.Context, before time.Time, limit int) (PurgeCounts, error)
	// PurgeExpiredSecrets deletes rotated-out secrets past their grace.
	PurgeExpiredSecrets(ctx context.Context, now time.Time) (int, error)
	// DeactivateFailing deactivates active webhooks that had attempts since
	// failingSince but none succeeded since then (and at least one failed
	// before it), cancelling their deliveries. Returns the webhooks.
	DeactivateFailing(ctx context.Context, failingSince time.Time, reason string) ([]*Webhook, error)
	// ReportFailing makes a webhook.failing operations event for each
	// active webhook whose attempts have all failed since before
	// failingSince, once per run of failures (the next success makes
	// webhook.recovered). Returns how many operations deliveries it made
	// (none for a tenant without an operations webhook).
	ReportFailing(ctx context.Context, failingSince time.Time) (int, error)
}

// Store is what the API, the web UI and the tools need of everything
// Herald keeps: one interface, implemented by sqlstore on SQLite and
// PostgreSQL and checked by the storetest conformance suite. It does not
// accept events or move deliveries: events come in through an
// EventIngester (the engine, dispatch.Engine), which stores them through
// the queue contract (package queue) that sqlstore also implements.
type Store interface {
	TenantService
	AuthService
	DesignerService
	WebhookService
	EventService
	ErasureService
	DeliveryService
	ReplayService
	InsightService
	Maintenance
	AuditService
	UserService
	OperationsService
	// Ping reports whether the database answers; EUNAVAILABLE when not.
	Ping(ctx context.Context) error
	// Ready reports whether the store can commit a write now; EUNAVAILABLE
	// when it cannot (the database is down or read-only, its disk full).
	// It writes at most about once a second and answers with the last
	// result in between, so a readiness probe may call it at any rate.
	Ready(ctx context.Context) error
	// Close releases the database.
	Close() error
}
