package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// runBench measures end-to-end throughput: events posted through the API
// of N in-process nodes sharing one database, delivered to a loopback
// receiver that answers 200 at once. It reports the ingest rate and the
// delivery rate (first POST to last delivery received).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	database := fs.String("database", "", "sqlite:<file> or postgres://... (default: a new SQLite file in a temporary directory)")
	nodes := fs.Int("nodes", 1, "Herald nodes sharing the database (PostgreSQL only for more than one)")
	events := fs.Int("events", 20000, "events to post")
	webhooks := fs.Int("webhooks", 4, "active webhooks each event is delivered to")
	batch := fs.Int("batch", 50, "events per POST (an array)")
	posters := fs.Int("posters", 16, "concurrent POSTing clients")
	concurrency := fs.Int("concurrency", 64, "senders in flight per node")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the measured run (first POST to last delivery) to this file, for go tool pprof")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *database == "" {
		dir, err := os.MkdirTemp("", "herald-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*database = "sqlite:" + filepath.Join(dir, "herald.db")
	}
	if strings.HasPrefix(*database, "sqlite:") && *nodes != 1 {
		return errors.New("SQLite serves one node; use --database postgres://... for --nodes > 1")
	}
	if *nodes < 1 || *events < 1 || *webhooks < 1 || *batch < 1 || *posters < 1 {
		return errors.New("--nodes, --events, --webhooks, --batch and --posters must be at least 1")
	}

	var received atomic.Int64
	want := int64(*events * *webhooks)
	done := make(chan struct{})
	var doneOnce sync.Once
	recvLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	recv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if received.Add(1) >= want {
			doneOnce.Do(func() { close(done) })
		}
	})}
	go recv.Serve(recvLn)
	defer recv.Close()

	secret := "bench-" + randomHex(12)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.Shutdown()
		}
	}()
	for i := range *nodes {
		s, err := startServer(ctx, serveConfig{
			Listen: "127.0.0.1:0", Database: *database, AllowPrivate: true, AdminSecret: secret,
			NodeID: fmt.Sprintf("bench-%d", i), Retention: 30 * 24 * time.Hour, FailingFor: 5 * 24 * time.Hour,
			Concurrency: *concurrency,
		}, logger, prometheus.NewRegistry())
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	clients := make([]*apiClient, len(servers))
	for i, s := range servers {
		clients[i] = newAPIClient(s.URL())
		if err := clients[i].login(ctx, "admin", secret); err != nil {
			return err
		}
	}
	c := clients[0]
	tenant := "bench-" + randomHex(4)
	inst := "/v1/tenants/" + tenant + "/instances/load"
	steps := []func() error{
		func() error {
			_, err := c.do(ctx, "POST", "/v1/tenants", map[string]any{"name": tenant}, nil)
			return err
		},
		func() error {
			_, err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/instances", map[string]any{"name": "load"}, nil)
			return err
		},
	}
	for i := range *webhooks {
		steps = append(steps, func() error {
			_, err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/designer/webhooks", map[string]any{
				"name": fmt.Sprintf("wh-%d", i), "title": "bench", "triggers": []map[string]string{{"eventEntity": "PATIENT"}}}, nil)
			return err
		})
	}
	steps = append(steps, func() error {
		_, err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/designer/publish", map[string]any{}, nil)
		return err
	})
	for i := range *webhooks {
		steps = append(steps, func() error {
			name := fmt.Sprintf("wh-%d", i)
			if _, err := c.do(ctx, "PATCH", inst+"/webhooks/"+name, map[string]any{"url": "http://" + recvLn.Addr().String() + "/" + name}, nil); err != nil {
				return err
			}
			_, err := c.do(ctx, "POST", inst+"/webhooks/"+name+"/activate", nil, nil)
			return err
		})
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("set up: %w", err)
		}
	}

	fmt.Fprintf(stdout, "herald bench: %d events x %d webhooks = %d deliveries, %d node(s), %s, %d CPUs\n",
		*events, *webhooks, want, *nodes, redactDSN(*database), runtime.NumCPU())
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	body := make([]map[string]any, *batch)
	for i := range body {
		body[i] = map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": fmt.Sprintf("p-%d", i), "patientId": "p", "sourceName": "Bench Patient"}
	}
	start := time.Now()
	var posted atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, *posters)
	for p := range *posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := clients[p%len(clients)]
			for {
				n := next.Add(int64(*batch))
				if n-int64(*batch) >= int64(*events) {
					return
				}
				size := min(int64(*batch), int64(*events)-(n-int64(*batch)))
				if _, err := cl.do(ctx, "POST", inst+"/events", body[:size], nil); err != nil {
					errc <- err
					return
				}
				posted.Add(size)
			}
		}()
	}
	wg.Wait()
	ingest := time.Since(start)
	select {
	case err := <-errc:
		return fmt.Errorf("post events: %w", err)
	default:
	}
	fmt.Fprintf(stdout, "ingest:   %d events in %v = %.0f events/s\n", posted.Load(), ingest.Round(time.Millisecond), float64(posted.Load())/ingest.Seconds())
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			total := time.Since(start)
			fmt.Fprintf(stdout, "delivery: %d deliveries in %v = %.0f deliveries/s (first POST to last delivery)\n",
				received.Load(), total.Round(time.Millisecond), float64(received.Load())/total.Seconds())
			return nil
		case <-tick.C:
			fmt.Fprintf(stdout, "  ... %d of %d delivered\n", received.Load(), want)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
