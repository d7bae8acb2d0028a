package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A soak is a long paced run (--soak 30m --rate 500) that samples each
// node every --sample-every and fails when something grows without bound:
// memory, goroutines, open files, the SQLite WAL, or how late deliveries
// arrive. It compares the last third of the run with the middle one (the
// first third is warm-up: caches fill, pools open, the WAL reaches its
// working size), and a metric fails when the lowest of its last-third
// samples is above the median of its middle-third ones by more than its
// tolerance: the floor rose, as it does in a leak and not in a burst.

// soakSample is one look at the run.
type soakSample struct {
	At         float64 `json:"atSeconds"` // since the load started
	Node       int     `json:"node"`
	RSSBytes   int64   `json:"rssBytes"`
	Goroutines int     `json:"goroutines"`
	OpenFiles  int     `json:"openFiles"`
	WALBytes   int64   `json:"walBytes"`   // the SQLite WAL; 0 on PostgreSQL
	LagP99Ms   float64 `json:"lagP99Ms"`   // creation to receipt, deliveries received in this sample's interval
	Deliveries int     `json:"deliveries"` // received in this sample's interval
}

// soakReport is the soak's samples and its verdict.
type soakReport struct {
	Samples []soakSample `json:"samples"`
	// Growing names each metric that grew without bound, and by how much;
	// empty when the run was steady.
	Growing []string `json:"growing"`
	// Judged is false when the run had too few samples to judge (fewer
	// than six).
	Judged bool `json:"judged"`
}

// soakTolerance is how much a metric's lowest value in the last third may
// exceed its median in the middle third: a share and an absolute amount,
// both of which must be exceeded for the metric to count as growing.
var soakTolerance = []struct {
	name  string
	value func(soakSample) float64
	share float64
	floor float64
	unit  string
}{
	{"RSS", func(s soakSample) float64 { return float64(s.RSSBytes) / (1 << 20) }, 0.25, 32, "MiB"},
	{"goroutines", func(s soakSample) float64 { return float64(s.Goroutines) }, 0.25, 50, ""},
	{"open files", func(s soakSample) float64 { return float64(s.OpenFiles) }, 0.25, 20, ""},
	{"WAL", func(s soakSample) float64 { return float64(s.WALBytes) / (1 << 20) }, 0.5, 64, "MiB"},
	{"lag p99", func(s soakSample) float64 { return s.LagP99Ms }, 2, 250, "ms"},
}

// judge fills in the verdict from the samples.
func (r *soakReport) judge(nodes int) {
	for node := range nodes {
		var ss []soakSample
		for _, s := range r.Samples {
			if s.Node == node {
				ss = append(ss, s)
			}
		}
		if len(ss) < 6 {
			return
		}
		r.Judged = true
		third := len(ss) / 3
		for _, m := range soakTolerance {
			values := func(part []soakSample) []float64 {
				var v []float64
				for _, s := range part {
					v = append(v, m.value(s))
				}
				slices.Sort(v)
				return v
			}
			// A leak lifts every sample; a burst of load lifts a few. So
			// the floor of the last third is held against the middle
			// third's median: a spike that passes does not count, growth
			// that stays does.
			mid, last := values(ss[third:2*third]), values(ss[2*third:])
			middle, floor := mid[len(mid)/2], last[0]
			if floor > middle*(1+m.share) && floor > middle+m.floor {
				r.Growing = append(r.Growing, fmt.Sprintf("node %d: %s grew from %.0f%s (the middle third's median) to at least %.0f%s (the last third's lowest)",
					node, m.name, middle, m.unit, floor, m.unit))
			}
		}
	}
}

// soakSampler takes the samples.
type soakSampler struct {
	b      *bench
	eps    []*benchEndpoint
	start  time.Time
	seen   []int // latencies read so far, per endpoint
	report *soakReport
}

// sample looks at every node once and prints what it saw.
func (s *soakSampler) sample() {
	var lat []time.Duration
	for i, ep := range s.eps {
		ep.mu.Lock()
		lat = append(lat, ep.latencies[s.seen[i]:]...)
		s.seen[i] = len(ep.latencies)
		ep.mu.Unlock()
	}
	slices.Sort(lat)
	p99 := 0.0
	if len(lat) > 0 {
		p99 = millis(lat[len(lat)*99/100])
	}
	at := time.Since(s.start).Seconds()
	for i, n := range s.b.nodes {
		smp := soakSample{At: at, Node: i, LagP99Ms: p99, Deliveries: len(lat)}
		pid := n.pid()
		smp.RSSBytes = currentRSS(pid)
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
			smp.OpenFiles = len(ents)
		}
		smp.Goroutines = scrapeGauge(n.url+"/metrics", "go_goroutines")
		if db, ok := strings.CutPrefix(s.b.db, "sqlite:"); ok {
			if fi, err := os.Stat(db + "-wal"); err == nil {
				smp.WALBytes = fi.Size()
			}
		}
		s.report.Samples = append(s.report.Samples, smp)
		fmt.Fprintf(s.b.progress, "soak %s node %d: RSS %s, %d goroutines, %d open files, WAL %s, lag p99 %s, %d deliveries\n",
			(time.Duration(at) * time.Second).Round(time.Second), i, mib(smp.RSSBytes), smp.Goroutines, smp.OpenFiles, mib(smp.WALBytes), ms(p99), smp.Deliveries)
	}
}

// currentRSS is a process's resident memory now (VmRSS), 0 if unreadable.
func currentRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// scrapeGauge reads one unlabelled gauge from a Prometheus text endpoint,
// -1 if it cannot.
func scrapeGauge(url, name string) int {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return int(f)
			}
		}
	}
	return -1
}

// scrapeHandoff sums, over the nodes at urls, the deliveries handed off
// and those claimed (herald_claim_batch_size's sum); -1 for a sum any
// node did not report.
func scrapeHandoff(urls []string) (handedOff, claimed int) {
	for _, u := range urls {
		h := scrapeGauge(u+"/metrics", "herald_deliveries_handed_off_total")
		c := scrapeGauge(u+"/metrics", "herald_claim_batch_size_sum")
		if h < 0 || handedOff < 0 {
			handedOff = -1
		} else {
			handedOff += h
		}
		if c < 0 || claimed < 0 {
			claimed = -1
		} else {
			claimed += c
		}
	}
	return handedOff, claimed
}

// runSoak samples every interval until stop is closed, then judges.
func (b *bench) runSoak(eps []*benchEndpoint, interval time.Duration, stop <-chan struct{}) *soakReport {
	s := &soakSampler{b: b, eps: eps, start: time.Now(), report: &soakReport{}, seen: make([]int, len(eps))}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			s.report.judge(len(b.nodes))
			return s.report
		case <-tick.C:
			s.sample()
		}
	}
}
