package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhooks/herald/sqlstore"
)

// benchReport is what `herald bench` measured. Its JSON field names are
// stable: docs/performance.md describes them and scripts may read them.
type benchReport struct {
	Mode     string `json:"mode"`     // one, fanout or slow
	Database string `json:"database"` // what the bench started Herald on; "" with --target
	Target   string `json:"target,omitempty"`
	Nodes    int    `json:"nodes"`
	CPUs     int    `json:"cpus"`
	Events   int    `json:"events"`
	Rate     int    `json:"rate"`  // events/s asked for; 0 in a burst
	Batch    int    `json:"batch"` // events per POST
	Webhooks int    `json:"webhooks"`

	// DeliveriesExpected counts every event to every fast webhook: the
	// deliveries the run waits for. Delivered counts those received.
	DeliveriesExpected int64 `json:"deliveriesExpected"`
	Delivered          int64 `json:"delivered"`

	CeilingPerSecond    float64 `json:"ceilingRequestsPerSecond"`
	IngestSeconds       float64 `json:"ingestSeconds"` // first POST to last 202
	IngestPerSecond     float64 `json:"ingestEventsPerSecond"`
	DeliverySeconds     float64 `json:"deliverySeconds"` // first POST to last awaited delivery
	DeliveriesPerSecond float64 `json:"deliveriesPerSecond"`
	CeilingRatio        float64 `json:"ceilingRatio"` // deliveriesPerSecond / ceilingRequestsPerSecond

	Latency    latencyReport   `json:"latencyMs"` // creation (POST) to receipt, every delivery received
	PerWebhook []webhookReport `json:"perWebhook"`

	Duplicates        int   `json:"duplicates"`
	SignatureFailures int64 `json:"signatureFailures"`
	UnknownRequests   int64 `json:"unknownRequests"` // to no webhook's path, or for no event the bench posted
	APIErrors         int64 `json:"apiErrors"`       // answers to POST events that are neither 202 nor 503/429
	APIRetries        int64 `json:"apiRetries"`      // 503 and 429 answers, retried

	// HandedOff counts the deliveries the nodes created already claimed
	// (handoff), Claimed those they claimed after creation; each is -1
	// when a node's metrics could not be read. A burst whose deliveries
	// outrun the queues has them claimed, which costs a second write.
	HandedOff int `json:"handedOff"`
	Claimed   int `json:"claimed"`

	Herald          *heraldUsage `json:"herald"`          // null with --target
	Soak            *soakReport  `json:"soak,omitempty"`  // with --soak
	BenchCPUSeconds float64      `json:"benchCpuSeconds"` // this process (posters, receiver) during the load
}

// latencyReport is a latency distribution in milliseconds.
type latencyReport struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// webhookReport is what one webhook's receiver saw.
type webhookReport struct {
	Name       string        `json:"name"`
	Path       string        `json:"path"`
	Slow       bool          `json:"slow"`
	Delivered  int           `json:"delivered"`
	Duplicates int           `json:"duplicates"`
	Latency    latencyReport `json:"latencyMs"`
}

// heraldUsage is the memory and CPU of the Herald processes.
type heraldUsage struct {
	PeakRSSBytes         int64       `json:"peakRssBytes"`    // the largest node's
	PeakRSSBytesSum      int64       `json:"peakRssBytesSum"` // all nodes'
	CPUSeconds           float64     `json:"cpuSeconds"`      // all nodes, during the load
	CPUMicrosPerDelivery float64     `json:"cpuMicrosPerDelivery"`
	Nodes                []nodeUsage `json:"nodes"`
}

type nodeUsage struct {
	PID          int     `json:"pid"`
	PeakRSSBytes int64   `json:"peakRssBytes"`
	CPUSeconds   float64 `json:"cpuSeconds"`
}

// measured is what the run collected, for the report.
type measured struct {
	ceiling       float64
	endpoints     []*benchEndpoint
	load          *benchLoad
	recv          *benchReceiver
	pids          []int
	before, after []procStats // per node
	self          time.Duration
	handedOff     int
	claimed       int
}

func newBenchReport(cfg benchConfig, m measured) *benchReport {
	r := &benchReport{
		Mode: cfg.Mode, Target: cfg.Target, Nodes: len(m.load.clients), CPUs: runtime.NumCPU(),
		Events: m.load.events, Rate: cfg.Rate, Batch: cfg.Batch, Webhooks: len(m.endpoints),
		DeliveriesExpected: m.recv.want, Delivered: m.recv.delivered.Load(),
		CeilingPerSecond:  m.ceiling,
		SignatureFailures: m.recv.signatureFailures(), UnknownRequests: m.recv.unknown.Load(),
		APIErrors: m.load.rejected.Load(), APIRetries: m.load.retried.Load(),
		BenchCPUSeconds: m.self.Seconds(),
		HandedOff:       m.handedOff, Claimed: m.claimed,
	}
	if cfg.Rate > 0 {
		r.Batch = 1
	}
	if cfg.Target == "" {
		r.Database = cmp.Or(sqlstore.RedactDSN(cfg.Database), "sqlite (a new file in a temporary directory)")
	}
	start := m.load.start
	r.IngestSeconds = (time.Duration(m.load.lastAccept.Load()) - start).Seconds()
	r.IngestPerSecond = ratio(float64(m.load.accepted.Load()), r.IngestSeconds)
	r.DeliverySeconds = (time.Duration(m.recv.finishedAt.Load()) - start).Seconds()
	r.DeliveriesPerSecond = ratio(float64(r.Delivered), r.DeliverySeconds)
	r.CeilingRatio = ratio(r.DeliveriesPerSecond, r.CeilingPerSecond)

	var all []time.Duration
	received := 0
	for _, ep := range m.endpoints {
		ep.mu.Lock()
		all = append(all, ep.latencies...)
		w := webhookReport{Name: ep.name, Path: ep.path, Slow: ep.slow, Delivered: len(ep.latencies),
			Duplicates: ep.duplicates, Latency: latencyOf(ep.latencies)}
		ep.mu.Unlock()
		r.PerWebhook = append(r.PerWebhook, w)
		r.Duplicates += w.Duplicates
		received += w.Delivered
	}
	r.Latency = latencyOf(all)
	if m.pids != nil {
		r.Herald = usageOf(m.pids, m.before, m.after, received)
	}
	return r
}

// usageOf sums the nodes' CPU time between before and after and takes
// their peak memory at the end.
func usageOf(pids []int, before, after []procStats, deliveries int) *heraldUsage {
	u := &heraldUsage{}
	for i, pid := range pids {
		cpu := (after[i].CPU - before[i].CPU).Seconds()
		u.Nodes = append(u.Nodes, nodeUsage{PID: pid, PeakRSSBytes: after[i].PeakRSS, CPUSeconds: cpu})
		u.PeakRSSBytes = max(u.PeakRSSBytes, after[i].PeakRSS)
		u.PeakRSSBytesSum += after[i].PeakRSS
		u.CPUSeconds += cpu
	}
	u.CPUMicrosPerDelivery = ratio(u.CPUSeconds*1e6, float64(deliveries))
	return u
}

// ratio is a / b, or 0 when b is not positive: JSON has no infinity.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// latencyOf returns the nearest-rank percentiles of ds.
func latencyOf(ds []time.Duration) latencyReport {
	if len(ds) == 0 {
		return latencyReport{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := min(len(s)-1, max(0, int(math.Ceil(p*float64(len(s))))-1))
		return millis(s[i])
	}
	return latencyReport{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: millis(s[len(s)-1])}
}

func millis(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

func (r *benchReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints the report for people.
func (r *benchReport) writeText(w io.Writer) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-18s%s\n", label, fmt.Sprintf(format, args...))
	}
	load := fmt.Sprintf("%d events in arrays of %d", r.Events, r.Batch)
	if r.Rate > 0 {
		load = fmt.Sprintf("%d events paced at %d/s, one per POST", r.Events, r.Rate)
	}
	where := fmt.Sprintf("%d node(s) on %s", r.Nodes, r.Database)
	if r.Target != "" {
		where = "the running Herald at " + r.Target
	}
	fmt.Fprintf(w, "herald bench: mode %s, %d webhook(s), %s; %s; %d CPUs\n", r.Mode, r.Webhooks, load, where, r.CPUs)
	line("loopback ceiling", "%s requests/s (%d connections, 1 KiB bodies)", thousands(r.CeilingPerSecond), ceilingConns)
	line("ingest", "%s events/s (first POST to last 202: %.2fs)", thousands(r.IngestPerSecond), r.IngestSeconds)
	line("delivery", "%s deliveries/s = %.2f x ceiling (%d of %d, first POST to last delivery: %.2fs)",
		thousands(r.DeliveriesPerSecond), r.CeilingRatio, r.Delivered, r.DeliveriesExpected, r.DeliverySeconds)
	line("latency", "%s (creation to receipt, every delivery)", r.Latency)
	if r.HandedOff >= 0 && r.Claimed >= 0 {
		line("handoff", "%d deliveries handed off at creation, %d claimed after", r.HandedOff, r.Claimed)
	}
	if len(r.PerWebhook) > 1 {
		for _, wh := range r.PerWebhook {
			note := ""
			if wh.Slow {
				note = fmt.Sprintf(" (answers in %v; the run does not wait for it)", slowAnswer)
			}
			line("  "+wh.Name, "%d delivered, %s%s", wh.Delivered, wh.Latency, note)
		}
	}
	if r.Herald == nil {
		line("herald", "memory and CPU not measured: --target is a process the bench did not start")
	} else {
		h := r.Herald
		line("herald", "peak RSS %s, CPU %.2fs during the load (%.0f µs per delivery)", mib(h.PeakRSSBytes), h.CPUSeconds, h.CPUMicrosPerDelivery)
		if len(h.Nodes) > 1 {
			for i, n := range h.Nodes {
				line(fmt.Sprintf("  node %d", i), "pid %d, peak RSS %s, CPU %.2fs", n.PID, mib(n.PeakRSSBytes), n.CPUSeconds)
			}
		}
	}
	line("bench process", "CPU %.2fs during the load (posters and receiver, on the same CPUs as Herald)", r.BenchCPUSeconds)
	line("checks", "%d duplicates, %d signature failures, %d unknown requests, %d API errors, %d retried 503/429",
		r.Duplicates, r.SignatureFailures, r.UnknownRequests, r.APIErrors, r.APIRetries)
	if s := r.Soak; s != nil {
		switch {
		case !s.Judged:
			line("soak", "%d samples: too few to judge (six per node at least; lower --sample-every)", len(s.Samples))
		case len(s.Growing) == 0:
			line("soak", "%d samples: steady (memory, goroutines, open files, WAL and lag did not grow between the middle and the last third)", len(s.Samples))
		default:
			line("soak", "%d samples: GROWING: %s", len(s.Samples), strings.Join(s.Growing, "; "))
		}
	}
}

func (l latencyReport) String() string {
	return fmt.Sprintf("p50 %s, p95 %s, p99 %s, max %s", ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max))
}

func ms(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// thousands formats v rounded, with commas between thousands.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
