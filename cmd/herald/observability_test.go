package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// opsDir holds the Grafana dashboard and the Prometheus alert rules.
var opsDir = filepath.Join("..", "..", "docs", "operations")

// TestAlertRules checks docs/operations/alerts.yml with Prometheus's own
// promtool: the rules parse, and the unit tests in alerts_test.yml (each
// alert fires on the series that should wake someone, and not before its
// time) pass.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("the alert rules are checked with promtool, from Debian's prometheus package (apt-get install -y --no-install-recommends prometheus; .ci/run does it): ", err)
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = opsDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestDashboardAndAlertsNameRealMetrics: every metric the dashboard and
// the alert rules query is one a running Herald serves, so a renamed
// metric cannot leave a panel empty or an alert silent.
func TestDashboardAndAlertsNameRealMetrics(t *testing.T) {
	p := startHerald(t, nil, "--database", "sqlite:"+filepath.Join(t.TempDir(), "herald.db"), "--allow-private-destinations")
	c := p.client(t)
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)
	deliverOne(t, c, recv, inst)
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)$`).FindAllStringSubmatch(string(body), -1) {
		served[m[1]] = true
		if m[2] == "histogram" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				served[m[1]+suffix] = true
			}
		}
	}

	rules, err := os.ReadFile(filepath.Join(opsDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, m := range regexp.MustCompile(`(?m)^\s+expr: (?:\|\n((?:\s{10,}.*\n)+)|(.*)$)`).FindAllStringSubmatch(string(rules), -1) {
		exprs = append(exprs, m[1]+m[2])
	}
	if len(exprs) < 9 {
		t.Fatalf("found %d expressions in alerts.yml, want every rule's", len(exprs))
	}

	raw, err := os.ReadFile(filepath.Join(opsDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	panels := 0
	for _, p := range dash.Panels {
		if len(p.Targets) > 0 {
			panels++
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if panels < 15 {
		t.Fatalf("the dashboard has %d panels with queries", panels)
	}

	metric := regexp.MustCompile(`\b(?:herald|http|process|go)_[a-z_]+\b`)
	var named []string
	for _, e := range exprs {
		for _, name := range metric.FindAllString(e, -1) {
			if !served[name] {
				t.Errorf("%q queries %s, which Herald does not serve", strings.TrimSpace(e), name)
			}
			named = append(named, name)
		}
	}
	// Sanity: the alerts' core signals are among those checked.
	for _, want := range []string{"herald_ready", "herald_queue_lag_seconds_bucket", "http_requests_total", "herald_webhooks_probing"} {
		if !slices.Contains(named, want) {
			t.Errorf("no rule or panel queries %s", want)
		}
	}
}
