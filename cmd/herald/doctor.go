package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/sqlstore"
)

// certWarnBefore is how long before its expiry doctor warns about the
// serving certificate.
const certWarnBefore = 21 * 24 * time.Hour

// doctorTimeout bounds the whole of doctor's checks: a database that does
// not answer must not hang it.
const doctorTimeout = 20 * time.Second

// finding is one line of doctor's report.
type finding struct {
	level string // "ok", "warn" or "FAIL"
	area  string // what was checked: config, database, master key, tls, listen, destinations
	text  string // what was found and, for warn and FAIL, how to fix it
}

// doctor checks one serve configuration without starting anything or
// changing anything: the database is read, never migrated or written, and
// no key file is made.
type doctor struct {
	cfg      serveConfig
	findings []finding
}

func (d *doctor) ok(area, format string, a ...any) {
	d.findings = append(d.findings, finding{"ok", area, fmt.Sprintf(format, a...)})
}

func (d *doctor) warn(area, format string, a ...any) {
	d.findings = append(d.findings, finding{"warn", area, fmt.Sprintf(format, a...)})
}

func (d *doctor) fail(area, format string, a ...any) {
	d.findings = append(d.findings, finding{"FAIL", area, fmt.Sprintf(format, a...)})
}

// runDoctor is `herald doctor [serve flags]`: it checks the configuration
// serve would run with, prints one line per finding, and fails when serve
// would not start or would run badly.
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stderr, "\nherald doctor takes the flags and environment of herald serve, checks them without starting, and names the fix for each problem.")
		return err
	}
	d := &doctor{cfg: cfg}
	if err != nil {
		d.fail("config", "%v", err)
	} else {
		ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
		defer cancel()
		d.config()
		d.database(ctx)
		d.tls()
		d.listen()
		d.destinations()
	}
	fails, warns := 0, 0
	for _, f := range d.findings {
		fmt.Fprintf(stdout, "%-4s  %-12s  %s\n", f.level, f.area, f.text)
		switch f.level {
		case "FAIL":
			fails++
		case "warn":
			warns++
		}
	}
	switch {
	case fails > 0:
		fmt.Fprintf(stdout, "\n%d problem(s) and %d warning(s): herald serve would not start, or would not run as it should.\n", fails, warns)
		return fmt.Errorf("doctor found %d problem(s)", fails)
	case warns > 0:
		fmt.Fprintf(stdout, "\nNo problem, %d warning(s).\n", warns)
	default:
		fmt.Fprintln(stdout, "\nNo problem found.")
	}
	return nil
}

// config checks settings that parse but are unwise.
func (d *doctor) config() {
	if d.cfg.AdminSecret == "" {
		d.warn("config", "HERALD_ADMIN_SECRET is not set: no platform admin API client is created or updated. Fine once people or API clients exist; to bootstrap, set it (openssl rand -base64 24).")
	} else {
		d.ok("config", "HERALD_ADMIN_SECRET is set (%d characters).", len(d.cfg.AdminSecret))
	}
}

// database checks that the database answers, how far it is migrated, and
// that the master key given opens its secrets.
func (d *doctor) database(ctx context.Context) {
	dsn := d.cfg.Database
	shown := sqlstore.RedactDSN(dsn)
	schema, err := sqlstore.InspectSchema(ctx, dsn)
	if err != nil {
		fix := "check the URL, and that PostgreSQL runs and lets this host in (pg_hba.conf)"
		if strings.HasPrefix(dsn, "sqlite:") {
			fix = "check the path and its permissions"
		}
		msg := strings.Join(strings.Fields(herald.ErrorMessage(err)), " ")
		d.fail("database", "%s; %s.", strings.TrimSuffix(msg, "."), fix)
		return
	}
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		d.sqliteFiles(path, schema.Exists)
	}
	switch {
	case len(schema.Unknown) > 0:
		d.fail("database", "%s was migrated by a newer Herald (migrations %v are unknown to %s); run that version or newer, or restore a backup taken before the upgrade.", shown, schema.Unknown, herald.Version)
	case !schema.Exists && strings.HasPrefix(dsn, "sqlite:"):
		d.ok("database", "%s does not exist yet: serve creates it at its first start (%d migrations).", shown, len(schema.Pending))
	case !schema.Exists:
		d.ok("database", "%s answers and holds no Herald schema yet: serve creates it at its first start (%d migrations).", shown, len(schema.Pending))
	case len(schema.Pending) > 0:
		d.warn("database", "%s answers; serve will apply %d migration(s) at its next start: %s. Back the database up first (docs/operations.md, Upgrades).", shown, len(schema.Pending), strings.Join(schema.Pending, ", "))
	default:
		d.ok("database", "%s answers and is migrated (%d migrations).", shown, schema.Applied)
	}
	d.masterKey(ctx, schema)
}

// sqliteFiles checks that the SQLite database's directory can be written
// and that its files are private.
func (d *doctor) sqliteFiles(path string, exists bool) {
	dir := filepath.Dir(path)
	if !exists {
		if err := writableDir(dir); err != nil {
			d.fail("database", "serve cannot create %s: %v; create the directory or choose another --database.", path, err)
		}
		return
	}
	for _, f := range []string{path, path + "-wal", filepath.Join(dir, masterKeyFileName)} {
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm()&0o077 != 0 {
			d.warn("database", "%s may be read by other users (mode %04o), yet it holds health data or the key to its secrets: chmod 600 %s.", f, fi.Mode().Perm(), f)
		}
	}
}

// writableDir reports whether dir, or the nearest directory above it that
// exists, can be written to.
func writableDir(dir string) error {
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", dir)
			}
			f, err := os.CreateTemp(dir, ".herald-doctor-*")
			if err != nil {
				return err
			}
			f.Close()
			return os.Remove(f.Name())
		}
		if parent := filepath.Dir(dir); parent != dir {
			dir = parent
			continue
		}
		return err
	}
}

// masterKey checks that a master key is given where one is needed, and
// that it opens the database's key check.
func (d *doctor) masterKey(ctx context.Context, schema sqlstore.Schema) {
	ring, _, err := loadKeys(ctx, d.cfg.Database, d.cfg.MasterKeyFile, false)
	if err != nil {
		if strings.HasPrefix(d.cfg.Database, "sqlite:") && !schema.KeyChecked && os.Getenv("HERALD_MASTER_KEY") == "" && d.cfg.MasterKeyFile == "" {
			d.ok("master key", "none yet: serve creates %s beside the database at its first start. Back it up apart from the database.", masterKeyFileName)
			return
		}
		d.fail("master key", "%v.", strings.TrimSuffix(err.Error(), "."))
		return
	}
	ids := ring.IDs()
	if schema.KeyChecked {
		store, err := sqlstore.Open(ctx, d.cfg.Database, sqlstore.Config{Keys: ring, ReadOnly: true})
		if err != nil {
			d.fail("master key", "%s", herald.ErrorMessage(err))
			return
		}
		store.Close()
		d.ok("master key", "%s opens the database's secrets.", keyList(ids))
	} else {
		d.ok("master key", "%s given; the database has no secret sealed yet.", keyList(ids))
	}
	if len(ids) > 1 {
		d.warn("master key", "%d master keys are given: once `herald keys rewrap` has run, drop all but the first (%s).", len(ids), ids[0])
	}
}

func keyList(ids []string) string {
	if len(ids) == 1 {
		return "master key " + ids[0]
	}
	return "master keys " + strings.Join(ids, ", ")
}

// tls checks the serving certificate, or warns when Herald would serve
// plain HTTP beyond this machine.
func (d *doctor) tls() {
	c := d.cfg
	if c.TLSCert == "" {
		host, _, err := net.SplitHostPort(c.Listen)
		if ip, perr := netip.ParseAddr(host); err == nil && (host == "localhost" || (perr == nil && ip.IsLoopback())) {
			d.ok("tls", "plain HTTP on loopback (%s): only this machine reaches it.", c.Listen)
		} else if c.publicHTTPS() {
			d.ok("tls", "plain HTTP on %s behind a proxy that serves %s.", c.Listen, c.PublicURL)
		} else {
			d.warn("tls", "plain HTTP on %s, which other machines may reach: tokens, secrets and health data would cross the network in the clear. Give --tls-cert and --tls-key, or put a TLS proxy in front and set --public-url https://...", c.Listen)
		}
		return
	}
	pair, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		d.fail("tls", "--tls-cert %s and --tls-key %s: %v; give a PEM certificate and the private key that goes with it.", c.TLSCert, c.TLSKey, err)
		return
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			d.fail("tls", "--tls-cert %s: %v.", c.TLSCert, err)
			return
		}
	}
	names := strings.Join(append(append([]string{}, leaf.DNSNames...), ipStrings(leaf.IPAddresses)...), ", ")
	now := time.Now()
	switch left := leaf.NotAfter.Sub(now); {
	case left <= 0:
		d.fail("tls", "the certificate in %s expired on %s: clients refuse it. Renew it and replace the file (SIGHUP reloads it without a restart).", c.TLSCert, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		d.fail("tls", "the certificate in %s is not valid before %s: check this machine's clock, or the certificate.", c.TLSCert, leaf.NotBefore.UTC().Format(time.RFC3339))
	case left < certWarnBefore:
		d.warn("tls", "the certificate in %s expires in %d day(s), on %s: renew it (SIGHUP reloads it without a restart).", c.TLSCert, int(left.Hours()/24), leaf.NotAfter.UTC().Format(time.RFC3339))
	default:
		d.ok("tls", "certificate for %s, valid until %s.", names, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

// listen checks that the listen address is free and can be taken.
func (d *doctor) listen() {
	ln, err := net.Listen("tcp", d.cfg.Listen)
	if err != nil {
		fix := "choose another --listen, or stop what holds it"
		if errors.Is(err, os.ErrPermission) {
			fix = "ports below 1024 need privileges: choose a port above 1024, or put a proxy in front"
		} else if strings.Contains(err.Error(), "address already in use") {
			fix = "another process, perhaps a Herald already running, listens there: stop it or choose another --listen"
		}
		d.fail("listen", "cannot listen on %s: %v; %s.", d.cfg.Listen, err, fix)
		return
	}
	ln.Close()
	d.ok("listen", "%s is free.", d.cfg.Listen)
}

// destinations checks the rules on where webhooks may send.
func (d *doctor) destinations() {
	c := d.cfg
	if c.AllowPrivate {
		d.warn("destinations", "--allow-private-destinations lets webhooks reach loopback, private and link-local addresses: for development only. In production name the ranges receivers live in with --allow-destination.")
	}
	for _, p := range c.AllowDestinations {
		switch {
		case p.Bits() == 0:
			d.warn("destinations", "--allow-destination %s opens every address, this machine's and the intranet's included: name the receivers' ranges instead.", p)
		case netguard.CoversMetadata(p):
			d.warn("destinations", "--allow-destination %s lets webhooks reach a cloud metadata service, which hands out this machine's credentials: make sure that is meant.", p)
		}
	}
	if _, err := loadDestinationCAs(c.DestinationCAFile); err != nil {
		d.fail("destinations", "%v; give a PEM bundle of certificate authorities.", err)
	}
	if c.RequireHTTPSDestinations {
		d.ok("destinations", "webhooks send to https:// URLs only.")
	} else {
		d.ok("destinations", "webhooks may send to http:// URLs: consider --require-https-destinations, so that no event leaves in the clear.")
	}
}
