package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/heraldhooks/herald/keyring"
	"github.com/heraldhooks/herald/sqlstore"
)

// benchConfig is everything `herald bench` is told by its flags.
type benchConfig struct {
	// Target is the URL of a running Herald to measure; empty starts
	// Herald as child processes.
	Target      string
	AdminSecret string
	Database    string // empty: a fresh SQLite file in a temporary directory
	Nodes       int
	Concurrency int    // passed to each child's serve --concurrency; 0 keeps serve's default
	CPUProfile  string // passed to each child's serve --cpuprofile, suffixed per node when several

	Mode     string // one, fanout or slow
	Webhooks int    // fast webhooks in modes one and fanout; 0: the mode's default

	Events   int           // burst: events to post
	Batch    int           // burst: events per POST
	Posters  int           // burst: concurrent POSTing clients
	Rate     int           // paced: events per second; 0 means burst
	Duration time.Duration // paced: how long to post

	// Soak, when set, makes the run a soak of this length (paced at
	// --rate, 500 by default), sampled every SampleEvery (bench_soak.go).
	Soak        time.Duration
	SampleEvery time.Duration

	CeilingDuration time.Duration
	Timeout         time.Duration
	JSON            bool
}

// Bench modes.
const (
	modeOne    = "one"
	modeFanout = "fanout"
	modeSlow   = "slow"
)

func parseBenchFlags(args []string, stderr io.Writer) (benchConfig, error) {
	var c benchConfig
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: herald bench [flags]\n\n"+
			"Starts Herald as a child process (or measures a running one with --target), a local receiver\n"+
			"that verifies every signature, sets up a tenant and webhooks through the API, measures the\n"+
			"loopback ceiling, posts events and reports throughput, latency, Herald's memory and CPU.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Target, "target", "", "URL of a running Herald to measure instead of starting one; it must run on this machine with --allow-private-destinations (memory and CPU are then not measured)")
	fs.StringVar(&c.AdminSecret, "admin-secret", "", "with --target: the secret of its admin API client (default: env HERALD_ADMIN_SECRET)")
	fs.StringVar(&c.Database, "database", "", "sqlite:<file> or postgres://... for the Herald the bench starts; use a fresh database (default: a new SQLite file in a temporary directory)")
	fs.IntVar(&c.Nodes, "nodes", 1, "Herald processes sharing the database (PostgreSQL only for more than one)")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "passed to serve --concurrency: requests in flight to receivers per node (default: serve's)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "passed to serve --cpuprofile: each node writes a CPU profile of its whole run here at shutdown (with several nodes, FILE.0, FILE.1, ...)")
	fs.StringVar(&c.Mode, "mode", modeOne, "one: one webhook; fanout: 10 webhooks, each gets every event; slow: a fast webhook beside one whose receiver answers in 2 s")
	fs.IntVar(&c.Webhooks, "webhooks", 0, "webhooks in modes one and fanout, each gets every event (default: 1 for one, 10 for fanout)")
	fs.IntVar(&c.Events, "events", 20000, "events to post as fast as the API accepts them")
	fs.IntVar(&c.Batch, "batch", 100, "events per POST (an array)")
	fs.IntVar(&c.Posters, "posters", 8, "concurrent POSTing clients")
	fs.IntVar(&c.Rate, "rate", 0, "post this many events per second, one per POST, evenly spread, instead of --events as fast as possible: for latency")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "with --rate: how long to post")
	fs.DurationVar(&c.Soak, "soak", 0, "run a soak this long instead: paced at --rate (default 500/s), sampling each node's memory, goroutines, open files, WAL size and delivery lag every --sample-every, and failing when one grows without bound")
	fs.DurationVar(&c.SampleEvery, "sample-every", time.Minute, "with --soak: how often to sample")
	fs.DurationVar(&c.CeilingDuration, "ceiling-duration", 3*time.Second, "how long to measure the loopback ceiling before the load")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Minute, "give up when the run has not finished within this time")
	fs.BoolVar(&c.JSON, "json", false, "print the report as one JSON object instead of text")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("bench takes no arguments, got %q", fs.Args())
	}
	if c.Target != "" && c.AdminSecret == "" {
		c.AdminSecret = os.Getenv("HERALD_ADMIN_SECRET")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.Soak > 0 {
		if set["duration"] {
			return c, errors.New("--soak sets how long the load runs; drop --duration")
		}
		c.Duration = c.Soak
		if !set["rate"] {
			c.Rate = 500
			set["rate"] = true
		}
		if !set["timeout"] {
			c.Timeout = c.Soak + 10*time.Minute
		}
	}
	return c, c.validate(set)
}

// validate checks the flags against each other; set names the flags given.
func (c *benchConfig) validate(set map[string]bool) error {
	if c.Target != "" {
		for _, name := range []string{"database", "nodes", "concurrency", "cpuprofile"} {
			if set[name] {
				return fmt.Errorf("--%s configures the Herald the bench starts; with --target the running one is measured as it is", name)
			}
		}
		if c.AdminSecret == "" {
			return errors.New("--target needs the admin API client's secret: pass --admin-secret or set HERALD_ADMIN_SECRET")
		}
		c.Target = strings.TrimRight(c.Target, "/")
	}
	if c.Database != "" && !strings.HasPrefix(c.Database, "sqlite:") && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		return fmt.Errorf("--database must be sqlite:<file> or postgres://..., not %q", sqlstore.RedactDSN(c.Database))
	}
	if c.Soak > 0 && c.Target != "" {
		return errors.New("--soak watches the memory, files and goroutines of the nodes the bench starts; it cannot with --target")
	}
	if set["sample-every"] && c.Soak == 0 {
		return errors.New("--sample-every applies to --soak")
	}
	if c.Soak > 0 && c.SampleEvery <= 0 {
		return errors.New("--sample-every must be positive")
	}
	if c.Nodes > 1 && !c.postgres() {
		return errors.New("SQLite serves one node; use --database postgres://... for --nodes > 1")
	}
	switch c.Mode {
	case modeOne, modeFanout:
	case modeSlow:
		if c.Webhooks != 0 {
			return errors.New("--webhooks applies to modes one and fanout; mode slow always has one fast and one slow webhook")
		}
	default:
		return fmt.Errorf("--mode must be one, fanout or slow, not %q", c.Mode)
	}
	if set["rate"] && (set["events"] || set["batch"] || set["posters"]) {
		return errors.New("--events, --batch and --posters shape a burst; --rate paces one event per POST for --duration: pass one or the other")
	}
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"nodes", c.Nodes >= 1}, {"events", c.Events >= 1}, {"batch", c.Batch >= 1}, {"posters", c.Posters >= 1},
		{"webhooks", c.Webhooks >= 0}, {"rate", c.Rate >= 0}, {"concurrency", c.Concurrency >= 0},
		{"duration", c.Duration > 0}, {"ceiling-duration", c.CeilingDuration > 0}, {"timeout", c.Timeout > 0},
	} {
		if !f.ok {
			return fmt.Errorf("--%s must be positive", f.name)
		}
	}
	if c.Rate > 0 && c.totalEvents() < 1 {
		return errors.New("--rate x --duration must make at least one event")
	}
	return nil
}

func (c *benchConfig) postgres() bool {
	return strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://")
}

// totalEvents is how many events the run posts.
func (c *benchConfig) totalEvents() int {
	if c.Rate > 0 {
		return int(float64(c.Rate) * c.Duration.Seconds())
	}
	return c.Events
}

// fastWebhooks is how many webhooks answer at once.
func (c *benchConfig) fastWebhooks() int {
	switch c.Mode {
	case modeSlow:
		return 1
	case modeFanout:
		return cmp.Or(c.Webhooks, 10)
	}
	return cmp.Or(c.Webhooks, 1)
}

// runBench measures Herald end to end, as a separate process like a real
// deployment: events posted through its API, delivered to a receiver in
// this process that verifies every signature. See docs/performance.md.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	b := &bench{cfg: cfg, progress: stderr}
	defer b.close()
	rep, err := b.run(runCtx)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: %s", b.howFar())
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("the run did not finish within --timeout %v: %s; raise --timeout or ask for less", cfg.Timeout, b.howFar())
	default:
		return err
	}
	if err := b.stopNodes(); err != nil {
		return err
	}
	if cfg.JSON {
		err = rep.writeJSON(stdout)
	} else {
		rep.writeText(stdout)
	}
	if err == nil && rep.Soak != nil && len(rep.Soak.Growing) > 0 {
		err = fmt.Errorf("the soak found growth without bound: %s", strings.Join(rep.Soak.Growing, "; "))
	}
	return err
}

// bench is one run of `herald bench`.
type bench struct {
	cfg      benchConfig
	progress io.Writer

	tmpDir string
	db     string // the database the nodes run on
	nodes  []*benchNode
	recv   *benchReceiver
	load   *benchLoad
}

// run starts everything, measures the ceiling, sets up the webhooks,
// applies the load and waits for every delivery the mode expects.
func (b *bench) run(ctx context.Context) (*benchReport, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	recv, err := startBenchReceiver()
	if err != nil {
		return nil, err
	}
	b.recv = recv
	urls, secret, err := b.startHerald(ctx)
	if err != nil {
		return nil, err
	}
	b.watchNodes(ctx, cancel)
	ceiling, err := measureCeiling(ctx, recv.url+ceilingPath, ceilingConns, b.cfg.CeilingDuration)
	if err != nil {
		return nil, err
	}
	clients, err := loginAll(ctx, urls, secret)
	if err != nil {
		return nil, err
	}
	endpoints := benchEndpoints(b.cfg)
	inst, err := setUpWebhooks(ctx, clients[0], recv.url, endpoints)
	if err != nil {
		return nil, fmt.Errorf("set up: %w", err)
	}
	b.load = newBenchLoad(b.cfg, clients, inst)
	recv.expect(endpoints, b.load, b.load.events)

	m := measured{ceiling: ceiling, endpoints: endpoints, load: b.load, recv: recv}
	selfBefore, err := readProcStats(os.Getpid())
	if err != nil {
		return nil, err
	}
	if m.before, err = b.nodeStats(); err != nil {
		return nil, err
	}
	stopProgress := b.reportProgress()
	defer stopProgress()
	var soak chan *soakReport
	stopSoak := make(chan struct{})
	if b.cfg.Soak > 0 {
		soak = make(chan *soakReport, 1)
		go func() { soak <- b.runSoak(endpoints, b.cfg.SampleEvery, stopSoak) }()
	}
	defer close(stopSoak)
	if err := b.load.run(ctx); err != nil {
		// A POST fails first when a node dies; its exit says more.
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(time.Second):
			return nil, err
		}
	}
	select {
	case <-recv.done:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if m.after, err = b.nodeStats(); err != nil {
		return nil, err
	}
	selfAfter, err := readProcStats(os.Getpid())
	if err != nil {
		return nil, err
	}
	m.self = selfAfter.CPU - selfBefore.CPU
	m.handedOff, m.claimed = scrapeHandoff(urls)
	for _, n := range b.nodes {
		m.pids = append(m.pids, n.pid())
	}
	rep := newBenchReport(b.cfg, m)
	if soak != nil {
		stopSoak <- struct{}{}
		rep.Soak = <-soak
	}
	return rep, nil
}

// startHerald starts the child nodes, or checks --target, and returns the
// API URLs and the admin secret.
func (b *bench) startHerald(ctx context.Context) (urls []string, secret string, err error) {
	if b.cfg.Target != "" {
		return []string{b.cfg.Target}, b.cfg.AdminSecret, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("find the herald binary to start: %w", err)
	}
	db := b.cfg.Database
	if db == "" {
		if b.tmpDir, err = os.MkdirTemp("", "herald-bench-"); err != nil {
			return nil, "", err
		}
		db = "sqlite:" + filepath.Join(b.tmpDir, "herald.db")
	}
	b.db = db
	secret = "bench-" + randomHex(16)
	env := []string{"HERALD_ADMIN_SECRET=" + secret}
	if !strings.HasPrefix(db, "sqlite:") && os.Getenv("HERALD_MASTER_KEY") == "" && os.Getenv("HERALD_MASTER_KEY_FILE") == "" {
		// Nodes sharing PostgreSQL need one master key; a fresh one does
		// for a database the bench starts empty.
		env = append(env, "HERALD_MASTER_KEY="+keyring.Generate())
	}
	for i := range b.cfg.Nodes {
		n, err := startBenchNode(ctx, exe, b.nodeArgs(i, db), env)
		if err != nil {
			return nil, "", fmt.Errorf("start Herald node %d: %w", i, err)
		}
		b.nodes = append(b.nodes, n)
		urls = append(urls, n.url)
	}
	return urls, secret, nil
}

// watchNodes stops the run with the node's output when a node exits
// before the run is over, rather than letting it wait for --timeout.
func (b *bench) watchNodes(ctx context.Context, stop context.CancelCauseFunc) {
	for i, n := range b.nodes {
		go func() {
			select {
			case <-n.exited:
				stop(fmt.Errorf("node %d (herald serve) exited during the run (%v):\n%s", i, n.cmd.ProcessState, n.output))
			case <-ctx.Done():
			}
		}()
	}
}

// nodeArgs are the serve flags of node i.
func (b *bench) nodeArgs(i int, db string) []string {
	args := []string{"serve", "--listen", "127.0.0.1:0", "--database", db, "--allow-private-destinations",
		"--log-level", "warn", "--node-id", fmt.Sprintf("bench-%d", i)}
	if b.cfg.Concurrency > 0 {
		args = append(args, "--concurrency", fmt.Sprint(b.cfg.Concurrency))
	}
	if b.cfg.CPUProfile != "" {
		file := b.cfg.CPUProfile
		if b.cfg.Nodes > 1 {
			file = fmt.Sprintf("%s.%d", file, i)
		}
		args = append(args, "--cpuprofile", file)
	}
	return args
}

// nodeStats reads the CPU time and peak memory of every child node (none
// with --target).
func (b *bench) nodeStats() ([]procStats, error) {
	stats := make([]procStats, len(b.nodes))
	for i, n := range b.nodes {
		s, err := readProcStats(n.pid())
		if err != nil {
			return nil, fmt.Errorf("read the CPU time and memory of Herald node %d: %w", i, err)
		}
		stats[i] = s
	}
	return stats, nil
}

// stopNodes stops every child with SIGTERM, so each finishes its requests
// and writes its CPU profile, and reports the first that did not exit
// cleanly.
func (b *bench) stopNodes() error {
	var first error
	for i, n := range b.nodes {
		if err := n.stop(); err != nil && first == nil {
			first = fmt.Errorf("node %d (herald serve): %w", i, err)
		}
	}
	b.nodes = nil
	return first
}

// close releases everything the run started, whatever happened.
func (b *bench) close() {
	b.stopNodes()
	if b.recv != nil {
		b.recv.close()
	}
	if b.tmpDir != "" {
		os.RemoveAll(b.tmpDir)
	}
}

// reportProgress prints a line about once a second until stopped.
func (b *bench) reportProgress() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		start, last := time.Now(), int64(0)
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			delivered := b.recv.delivered.Load()
			fmt.Fprintf(b.progress, "bench %4.0fs: %s, %d deliveries/s\n", time.Since(start).Seconds(), b.howFar(), delivered-last)
			last = delivered
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// howFar says how many events were posted and accepted and how many
// deliveries arrived.
func (b *bench) howFar() string {
	if b.load == nil {
		return "stopped while starting Herald or setting up, before any event was posted"
	}
	return fmt.Sprintf("posted %d of %d events, %d accepted, %d of %d deliveries received",
		b.load.posted.Load(), b.load.events, b.load.accepted.Load(), b.recv.delivered.Load(), b.recv.want)
}
