package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/client"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/signature"
)

// demoEvents are the sample Welkin events the demo sends. The webhook
// listens for patients, assessments and custom data records, so the
// calendar event is accepted but delivered nowhere.
var demoEvents = []client.Event{
	{EventSubtype: "PATIENT_CREATED", SourceID: "49ec5a8e-0e4f-4a4e-9d8c-3f2b1c0e7a11", SourceName: "Jane Doe",
		PatientID: "49ec5a8e-0e4f-4a4e-9d8c-3f2b1c0e7a11", URL: "https://care.example/patients/49ec5a8e"},
	{EventSubtype: "ASSESSMENT_COMPLETED", SourceID: "asm-7731", SourceName: "PHQ-9",
		PatientID: "49ec5a8e-0e4f-4a4e-9d8c-3f2b1c0e7a11"},
	{EventEntity: "CDT", EventSubtype: "CDT_UPDATED", SourceID: "cdt-vitals-0042", SourceName: "Vitals",
		PatientID: "49ec5a8e-0e4f-4a4e-9d8c-3f2b1c0e7a11"},
	{EventSubtype: "PATIENT_UPDATED", SourceID: "8d1f2c3b-5a6e-4f70-8a9b-0c1d2e3f4a5b", SourceName: "John Roe",
		PatientID: "8d1f2c3b-5a6e-4f70-8a9b-0c1d2e3f4a5b"},
	{EventSubtype: "CALENDAR_EVENT_CREATED", SourceID: "cal-1", SourceName: "Follow-up visit"},
}

// demoExpected is how many deliveries the samples make: every event but
// the calendar one matches the webhook's triggers.
const demoExpected = 4

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "exit 0 as soon as every sample event is delivered")
	listen := fs.String("listen", "127.0.0.1:0", "address for the demo's API (default: any free port on loopback)")
	dataDir := fs.String("data", "", "directory for the demo's SQLite file (default: a new temporary directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := *dataDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "herald-demo-"); err != nil {
			return err
		}
	}
	say := func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }

	// The receiver verifies every request before it believes it, and
	// refuses all until it learns the secret, once the webhook exists; so
	// it is started first. It is the test kit's receiver (heraldtest),
	// which anyone may use to test an integration.
	recv := &demoReceiver{out: stdout, firstFails: "ASSESSMENT_COMPLETED", delivered: make(chan string, 64)}
	recvSrv, err := heraldtest.StartReceiver(heraldtest.ReceiverConfig{Strict: true, Verify: recv.verify, Respond: recv.respond})
	if err != nil {
		return err
	}
	defer recvSrv.Close()

	adminSecret := "demo-" + randomHex(12)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := startServer(ctx, serveConfig{
		Listen:       *listen,
		Database:     "sqlite:" + filepath.Join(dir, "herald.db"),
		AllowPrivate: true, // the demo's receiver is on loopback
		AdminSecret:  adminSecret,
		Retention:    30 * 24 * time.Hour,
		FailingFor:   5 * 24 * time.Hour,
		Concurrency:  16,
	}, logger, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	base := srv.URL()
	api, err := client.New(base)
	if err != nil {
		return err
	}

	say("Herald demo: one binary, an embedded SQLite store (%s), a local receiver that verifies signatures.", dir)
	say("")
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		say("  ✓ %s", what)
		return nil
	}
	const tenant, instance, hook = "acme", "sandbox", "wh-patient-sync"
	inst := "/v1/tenants/" + tenant + "/instances/" + instance
	var token client.Token
	url := recvSrv.URL + "/hooks"
	for _, s := range []struct {
		what string
		fn   func() error
	}{
		{"signed in as the platform API client \"admin\"", func() (err error) { token, err = api.SignIn(ctx, "admin", adminSecret); return err }},
		{"created tenant \"acme\"", func() error { _, err := api.CreateTenant(ctx, tenant); return err }},
		{"created instance \"sandbox\"", func() error { _, err := api.CreateInstance(ctx, tenant, instance); return err }},
		{"designed webhook \"wh-patient-sync\" (PATIENT_CREATED, PATIENT_UPDATED, ASSESSMENT_COMPLETED, every CDT event) as a draft", func() error {
			_, err := api.CreateDesignerWebhook(ctx, tenant, herald.DesignerWebhook{Name: hook, Title: "Patient sync",
				Triggers: []herald.Trigger{{EventSubtype: "PATIENT_CREATED"}, {EventSubtype: "PATIENT_UPDATED"},
					{EventSubtype: "ASSESSMENT_COMPLETED"}, {EventEntity: "CDT"}}})
			return err
		}},
		{"published the draft: the webhook now appears, inactive, in every instance", func() error {
			_, err := api.Publish(ctx, tenant, "first webhook")
			return err
		}},
		{"pointed it at the local receiver " + url, func() error {
			_, err := api.UpdateWebhook(ctx, tenant, instance, hook, herald.WebhookUpdate{
				URL:     &url,
				Headers: &[]herald.NameValue{{Name: "X-Receiver-Team", Value: "care-ops"}},
				Payload: &herald.PayloadUpdate{CustomFields: &[]herald.NameValue{{Name: "environment", Value: "demo"}}},
			})
			return err
		}},
		{"read its signing secret and gave it to the receiver", func() error {
			secret, err := api.WebhookSecret(ctx, tenant, instance, hook)
			recvSrv.SetSecrets(secret)
			return err
		}},
		{"activated it", func() error { _, err := api.ActivateWebhook(ctx, tenant, instance, hook); return err }},
	} {
		if err := step(s.what, s.fn()); err != nil {
			return err
		}
	}
	say("")
	say("Sending %d sample Welkin events (the receiver answers 503 to the first try of the assessment, to show a retry):", len(demoEvents))
	for _, ev := range demoEvents {
		res, err := api.SendEvent(ctx, tenant, instance, "", ev)
		if err != nil {
			return fmt.Errorf("post event: %w", err)
		}
		say("  → %-24s accepted as %s, %d deliver%s", ev.EventSubtype, res.EventID, res.Deliveries, map[bool]string{true: "y", false: "ies"}[res.Deliveries == 1])
	}
	say("")
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for got := 0; got < demoExpected; got++ {
		select {
		case <-recv.delivered:
		case <-deadline.C:
			return errors.New("the sample events were not all delivered within 2 minutes")
		case <-ctx.Done():
			return nil
		}
	}
	say("")
	say("Every sample was delivered and verified. Look around:")
	say("  API             %s", base)
	say("  credentials     apiClient=admin secret=%s", adminSecret)
	say("  token (1 hour)  export TOKEN=%s", token.Token)
	say("  a new token     curl -s %s/v1/auth/token -d '{\"apiClient\":\"admin\",\"secret\":\"%s\"}'", base, adminSecret)
	say("  delivery log    curl -s -H \"Authorization: Bearer $TOKEN\" %s%s/deliveries", base, inst)
	say("  one delivery    curl -s -H \"Authorization: Bearer $TOKEN\" %s%s/deliveries/<id>   (attempts, wait reason)", base, inst)
	say("  webhook         curl -s -H \"Authorization: Bearer $TOKEN\" %s%s/webhooks/%s", base, inst, hook)
	say("  metrics         %s/metrics     API description  %s/openapi.json", base, base)
	if *once {
		return nil
	}
	say("")
	say("Herald keeps running; press Ctrl-C to stop. Events you post now are printed as they land.")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-recv.delivered:
		}
	}
}

// demoReceiver is what a customer's receiver does with a request once
// the kit's receiver has verified its signature (refusing, 401, what does
// not verify): answer 503 to the first try of one subtype, to show a
// retry, dedupe on webhook-id (delivery is at least once), and print what
// arrived.
type demoReceiver struct {
	out        io.Writer
	firstFails string // the subtype whose first attempt gets a 503

	mu        sync.Mutex // over out, failed and seen
	failed    bool
	seen      map[string]bool // webhook-id of each event delivered
	delivered chan string
}

// verify is signature.Verify, saying when a request is refused.
func (d *demoReceiver) verify(secret string, h http.Header, body []byte) error {
	err := signature.Verify(secret, h, body, time.Now(), 0)
	if err != nil {
		d.mu.Lock()
		fmt.Fprintf(d.out, "  ✗ receiver refused a request: %v\n", err)
		d.mu.Unlock()
	}
	return err
}

// respond answers a verified request.
func (d *demoReceiver) respond(w http.ResponseWriter, _ *http.Request, req *heraldtest.Request) {
	var p struct {
		EventID      string `json:"eventId"`
		EventSubtype string `json:"eventSubtype"`
		SourceName   string `json:"sourceName"`
		TenantName   string `json:"tenantName"`
		InstanceName string `json:"instanceName"`
	}
	json.Unmarshal(req.Body, &p)
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.EventSubtype == d.firstFails && !d.failed {
		d.failed = true
		fmt.Fprintf(d.out, "  ↺ receiver answered 503 to %s %s (signature ok); Herald will retry in about 5 s\n", p.EventSubtype, p.EventID)
		http.Error(w, "try again soon", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	if d.seen == nil {
		d.seen = map[string]bool{}
	}
	if d.seen[p.EventID] {
		fmt.Fprintf(d.out, "  = duplicate of %s ignored (same webhook-id)\n", p.EventID)
		return
	}
	d.seen[p.EventID] = true
	fmt.Fprintf(d.out, "  ✓ delivered %-22s %s for %s/%s: %q, signature verified\n", p.EventSubtype, p.EventID, p.TenantName, p.InstanceName, p.SourceName)
	select {
	case d.delivered <- p.EventID:
	default:
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
