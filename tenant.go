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

	// CreateAPIClient stores a client (SecretHash set). ECONFLICT if the
	// name is taken anywhere in the deployment.
	CreateAPIClient(ctx context.Context, c *APIClient) error
	// UpsertAPIClient creates or replaces a client: the bootstrap admin,
	// whose secret comes from HERALD_ADMIN_SECRET at every start.
	UpsertAPIClient(ctx context.Context, c *APIClient) error
	// GetAPIClient returns a client or ENOTFOUND.
	GetAPIClient(ctx context.Context, name string) (*APIClient, error)
	// ListAPIClients returns the clients of a tenant sorted by name;
	// ENOTFOUND for an unknown tenant.
	ListAPIClients(ctx context.Context, tenant string) ([]*APIClient, error)
}

// Maintenance is the housekeeping one leader runs.
type Maintenance interface {
	// PurgeFinished deletes, past retention, up to limit deliveries in a
	// final state (DELIVERED, FAILED, CANCELLED) last updated before before,
	// with their attempts; up to limit events created before before that
	// have no delivery left; and the attempt counts of minutes before
	// before. A delivery still owed (PENDING, SENT, RETRYING) is never
	// purged, and so neither is its event. Returns how many of each went;
	// a caller with a backlog calls again while Deliveries or Events
	// reaches limit.
	PurgeFinished(ctx context.Context, before time.Time, limit int) (PurgeCounts, error)
	// PurgeExpiredSecrets deletes rotated-out secrets past their grace.
	PurgeExpiredSecrets(ctx context.Context, now time.Time) (int, error)
	// DeactivateFailing deactivates active webhooks that had attempts since
	// failingSince but none succeeded since then (and at least one failed
	// before it), cancelling their deliveries. Returns the webhooks.
	DeactivateFailing(ctx context.Context, failingSince time.Time, reason string) ([]*Webhook, error)
}

// Store is everything Herald keeps: one interface, implemented by sqlstore
// on SQLite and PostgreSQL and checked by the storetest conformance suite.
type Store interface {
	TenantService
	DesignerService
	WebhookService
	EventService
	ErasureService
	DeliveryService
	InsightService
	DeliveryQueue
	Maintenance
	AuditService
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
