package main

import (
	"strings"
	"testing"
)

// TestBenchSoak runs a short soak of the real binary: a sample a second
// for six seconds, every one with the node's memory, goroutines, open
// files, WAL and lag, and a verdict.
func TestBenchSoak(t *testing.T) {
	r := runBenchBinary(t, nil, "--soak", "6s", "--sample-every", "1s", "--rate", "50", "--ceiling-duration", "200ms")
	checkSane(t, r)
	s := r.Soak
	if s == nil || len(s.Samples) < 5 {
		t.Fatalf("the soak report has %v", s)
	}
	for _, smp := range s.Samples {
		if smp.RSSBytes <= 0 || smp.Goroutines <= 0 || smp.OpenFiles <= 0 || smp.WALBytes <= 0 {
			t.Errorf("a sample lacks a measure: %+v", smp)
		}
	}
	if len(s.Growing) > 0 {
		t.Errorf("a 6 s soak at 50 events a second found growth: %v", s.Growing)
	}
}

// TestSoakJudge: a metric that keeps growing through the last third is
// named; one that grew while warming up and then held is not, nor one that
// spiked late and came back; too few samples are not judged.
func TestSoakJudge(t *testing.T) {
	series := func(rss []int64, goroutines []int) *soakReport {
		r := &soakReport{}
		for i := range rss {
			r.Samples = append(r.Samples, soakSample{Node: 0, RSSBytes: rss[i] << 20, Goroutines: goroutines[i], OpenFiles: 30, WALBytes: 4 << 20, LagP99Ms: 10})
		}
		r.judge(1)
		return r
	}
	steady := series([]int64{20, 60, 80, 82, 81, 83, 84, 82, 83}, []int{40, 90, 95, 92, 96, 94, 93, 97, 95})
	if !steady.Judged || len(steady.Growing) > 0 {
		t.Errorf("warm-up then flat: judged %v, growing %v", steady.Judged, steady.Growing)
	}
	leak := series([]int64{20, 60, 80, 120, 160, 200, 240, 280, 320}, []int{40, 90, 95, 150, 300, 450, 600, 750, 900})
	if len(leak.Growing) != 2 || !strings.Contains(leak.Growing[0], "RSS grew from 160MiB") || !strings.Contains(leak.Growing[0], "at least 240MiB") ||
		!strings.Contains(leak.Growing[1], "goroutines") {
		t.Errorf("a leak of memory and goroutines: %v", leak.Growing)
	}
	// A burst of load late in the run that passes is no leak.
	burst := series([]int64{20, 60, 80, 82, 81, 83, 84, 180, 83}, []int{40, 90, 95, 92, 96, 94, 93, 660, 95})
	if len(burst.Growing) > 0 {
		t.Errorf("a burst that passed was taken for growth: %v", burst.Growing)
	}
	short := series([]int64{20, 30, 40}, []int{1, 2, 3})
	if short.Judged {
		t.Error("three samples were judged")
	}
}
