package main

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald/client"
	"github.com/heraldhooks/herald/heraldtest/storekit"
)

// burst posts events to the nodes in turn, one every gap, until ctx ends,
// each with its own idempotency key and retried (the same key) after any
// refusal or broken connection until it gets a 202, as a careful producer
// does. It returns the ids of the accepted events and how many answers
// were refusals or errors along the way.
func burst(ctx context.Context, t *testing.T, nodes []*proc, gap time.Duration) (accepted []string, refused int) {
	t.Helper()
	var clients []*client.Client
	for _, n := range nodes {
		c, err := client.New(n.URL, client.WithAPIClient("admin", testAdminSecret))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return accepted, refused
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "burst-" + strconv.Itoa(i)
			for try := 0; ; try++ {
				c := clients[(i+try)%len(clients)]
				a, err := c.SendEvent(context.Background(), "acme", "sandbox", key, client.Event{
					EventSubtype: "PATIENT_CREATED", PatientID: key})
				if err == nil {
					mu.Lock()
					accepted = append(accepted, a.EventID)
					mu.Unlock()
					return
				}
				mu.Lock()
				refused++
				mu.Unlock()
				if try > 300 {
					t.Errorf("event %s refused 300 times, the last: %v", key, err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
}

// TestPostgresBackendsKilledUnderLoad: two nodes on PostgreSQL under a
// burst of events while every one of their database connections is
// killed with pg_terminate_backend, three times: events may be refused
// meanwhile (the producer retries them), and every event that got a 202
// arrives.
func TestPostgresBackendsKilledUnderLoad(t *testing.T) {
	dsn := storekit.PostgresDSN(t)
	args := []string{"--database", dsn, "--allow-private-destinations"}
	nodes := []*proc{startHerald(t, []string{"HERALD_NODE_ID=node-a"}, args...), startHerald(t, []string{"HERALD_NODE_ID=node-b"}, args...)}
	recv := newReceiver(t)
	_, secret := setupWebhook(t, nodes[0].client(t), recv.URL+"/hook")
	recv.SetSecrets(secret)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var dbName string
	if err := db.QueryRow(`SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	var killed int
	kills := make(chan int, 1)
	go func() {
		n := 0
		start := time.Now()
		for _, at := range []time.Duration{time.Second, 2500 * time.Millisecond, 4 * time.Second} {
			time.Sleep(time.Until(start.Add(at)))
			var k int
			if err := db.QueryRow(`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = $1 AND pid <> pg_backend_pid()`, dbName).Scan(&k); err != nil {
				t.Errorf("pg_terminate_backend: %v", err)
			}
			n += k
		}
		kills <- n
	}()
	accepted, refused := burst(ctx, t, nodes, 20*time.Millisecond)
	killed = <-kills
	t.Logf("%d events accepted, %d refusals or errors on the way, %d connections killed", len(accepted), refused, killed)
	if killed < 3 {
		t.Fatalf("only %d connections were killed: the test did not test", killed)
	}
	recv.WaitDelivered(t, 90*time.Second, accepted...)
}

// privatePostgres starts a PostgreSQL cluster of its own in a temporary
// directory, on a free loopback port, so that a test may restart it
// without touching the one other tests share. It needs root (to run the
// server as the postgres user) and the server's binaries; the test is
// skipped, visibly, without them. It returns the cluster's DSN and its
// pg_ctl, run as postgres.
func privatePostgres(t *testing.T) (dsn string, pgctl func(args ...string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a private PostgreSQL runs as the postgres user, which needs root")
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user: PostgreSQL's server is not installed")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Skip("PostgreSQL's server binaries (initdb) are not installed")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "herald-pg-")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	asPostgres := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	asPostgres("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	pgctl = func(args ...string) {
		t.Helper()
		asPostgres("pg_ctl", append([]string{"-D", data, "-w", "-t", "60", "-l", filepath.Join(dir, "log"),
			"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)}, args...)...)
	}
	pgctl("start")
	t.Cleanup(func() {
		exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop").Run()
		os.RemoveAll(dir)
	})
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), pgctl
}

// TestPostgresRestartMidBurst: two nodes on a PostgreSQL that is restarted
// (pg_ctl restart, as pg_ctlcluster restart does) in the middle of a burst
// of events: events are refused while it is down, and every event that got
// a 202 arrives once it is back.
func TestPostgresRestartMidBurst(t *testing.T) {
	dsn, pgctl := privatePostgres(t)
	args := []string{"--database", dsn, "--allow-private-destinations"}
	nodes := []*proc{startHerald(t, []string{"HERALD_NODE_ID=node-a"}, args...), startHerald(t, []string{"HERALD_NODE_ID=node-b"}, args...)}
	recv := newReceiver(t)
	_, secret := setupWebhook(t, nodes[0].client(t), recv.URL+"/hook")
	recv.SetSecrets(secret)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		time.Sleep(2 * time.Second)
		pgctl("-m", "fast", "restart")
	}()
	accepted, refused := burst(ctx, t, nodes, 20*time.Millisecond)
	<-restarted
	t.Logf("%d events accepted, %d refusals or errors on the way", len(accepted), refused)
	if refused == 0 {
		t.Error("no event was refused: the restart did not happen during the burst")
	}
	recv.WaitDelivered(t, 90*time.Second, accepted...)
	ids := slices.Collect(maps.Keys(recv.Delivered()))
	if len(ids) < len(accepted) {
		t.Errorf("%d events arrived, %d were accepted", len(ids), len(accepted))
	}
}
