package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
	"github.com/heraldhooks/herald/sqlstore"
)

const usersUsage = `Usage:
  herald users create --email EMAIL --display-name NAME (--platform-admin | --tenant T --role R) [flags]
      invite a person and print their one-time setup link; the first platform admin is made this way
`

// runUsers is `herald users`.
func runUsers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if ok, err := subcommand(args, "users", "create", usersUsage, stderr); !ok {
		return err
	}
	fs := flag.NewFlagSet("users create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := databaseFlags(fs, "; on SQLite, with herald serve stopped")
	email := fs.String("email", "", "the person's email address: they sign in with it")
	name := fs.String("display-name", "", "the person's name, as others see it")
	platform := fs.Bool("platform-admin", false, "make a platform admin: every right on every tenant")
	tenant := fs.String("tenant", "", "the tenant the person belongs to (not with --platform-admin)")
	role := fs.String("role", "", "the person's role in --tenant: admin, designer, producer or viewer")
	publicURL := fs.String("public-url", envOr("HERALD_PUBLIC_URL", ""), "where people reach Herald, like https://herald.example.com: the setup link is printed under it (env HERALD_PUBLIC_URL); without it the link is a path")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("users create takes no arguments, got %q", fs.Args())
	}
	r := herald.Role(*role)
	switch {
	case *platform && (*tenant != "" || *role != ""):
		return errors.New("--platform-admin goes without --tenant and --role: a platform admin belongs to no tenant")
	case *platform:
		r = herald.RolePlatformAdmin
	case *tenant == "":
		return errors.New("give --platform-admin, or --tenant and --role")
	}
	store, ring, created, err := db.open(ctx, sqlstore.Config{}, true)
	if err != nil {
		return err
	}
	defer store.Close()
	if created != "" {
		fmt.Fprintf(stderr, "created master key file %s: back it up; the database's secrets cannot be opened without it\n", created)
	}
	gate, err := access.New(access.Config{Store: store, Keys: ring, Audit: store})
	if err != nil {
		return err
	}
	inv, err := gate.InviteUser(ctx, *tenant, *email, *name, r)
	if err != nil {
		if he := (*herald.Error)(nil); errors.As(err, &he) {
			return errors.New(he.Message)
		}
		return err
	}
	kind, actor := herald.ActorSystem, "herald users create"
	if err := store.AppendAudit(ctx, &herald.AuditEntry{ActorType: kind, Actor: actor, Tenant: inv.User.Tenant, Action: "user.create",
		Target: "user " + inv.User.Email, Diff: []byte(fmt.Sprintf(`{"role":%q}`, inv.User.Role))}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	link := strings.TrimSuffix(*publicURL, "/") + "/ui/setup/" + inv.Token
	fmt.Fprintf(stdout, "Invited %s (%s). Their one-time setup link, valid until %s:\n\n  %s\n\nIt sets a password and an authenticator app; send it by a channel you trust.\n",
		inv.User.Email, inv.User.Role, inv.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"), link)
	return nil
}
