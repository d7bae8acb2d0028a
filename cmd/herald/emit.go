package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/client"
)

// emitBatch is how many events emit posts per request.
const emitBatch = 100

const emitUsage = `Usage: herald emit [flags] TENANT/INSTANCE EVENT_SUBTYPE

Posts sample events of a catalog subtype, with made-up but realistic values
(patients, assessments, custom data records...), to try a webhook without
writing a producer. It prints one line per event: its id, subtype, patient
and how many webhooks it is to be delivered to.

Credentials: HERALD_TOKEN, or an API client's name (--api-client, env
HERALD_API_CLIENT) and secret (env HERALD_API_SECRET). The client needs the
producer role or above.

Example:
  HERALD_API_CLIENT=admin HERALD_API_SECRET=... herald emit acme/sandbox PATIENT_CREATED --count 10

Flags:
`

// runEmit is `herald emit`.
func runEmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("emit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, emitUsage)
		fs.PrintDefaults()
	}
	server, apiClient := cliClientFlags(fs)
	count := fs.Int("count", 1, "how many events to post (1 to 10000)")
	patient := fs.String("patient", "", "the patientId of every event (default: a new made-up patient per event)")
	seed := fs.Uint64("seed", 0, "seed of the made-up values, to post the same ones again (default: random)")
	// Flags may come after the arguments, as in the example.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fs.Usage()
		return errors.New("emit takes TENANT/INSTANCE and EVENT_SUBTYPE")
	}
	tenant, instance, ok := strings.Cut(pos[0], "/")
	if !ok || tenant == "" || instance == "" {
		return fmt.Errorf("%q is not TENANT/INSTANCE, such as acme/sandbox", pos[0])
	}
	subtype := strings.ToUpper(pos[1])
	entity, ok := herald.Catalog.EntityOf(subtype)
	if !ok {
		return fmt.Errorf("%s is not in the event catalog; known subtypes: %s", pos[1], strings.Join(herald.Catalog.Subtypes(""), ", "))
	}
	if *count < 1 || *count > 10000 {
		return fmt.Errorf("--count must be from 1 to 10000, not %d", *count)
	}
	c, err := newCLIClient(*server, *apiClient)
	if err != nil {
		return err
	}
	s := *seed
	if s == 0 {
		s = mathrand.Uint64()
	}
	fake := newFaker(s)
	events := make([]client.Event, *count)
	for i := range events {
		events[i] = fake.event(entity, subtype, *patient)
	}
	for start := 0; start < len(events); start += emitBatch {
		batch := events[start:min(start+emitBatch, len(events))]
		accepted, err := c.SendEvents(ctx, tenant, instance, batch...)
		if err != nil {
			return fmt.Errorf("post events to %s/%s (%d of %d posted): %w", tenant, instance, start, len(events), err)
		}
		for i, a := range accepted {
			fmt.Fprintf(stdout, "%s  %s  patient %s  %d deliver%s\n", a.EventID, subtype, orDash(batch[i].PatientID),
				a.Deliveries, map[bool]string{true: "y", false: "ies"}[a.Deliveries == 1])
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// faker makes up events that look like a care platform's: patients with
// names and birth dates, assessments with scores, custom data records with
// vitals. Nothing in them is real.
type faker struct {
	r *mathrand.Rand
}

func newFaker(seed uint64) *faker {
	return &faker{r: mathrand.New(mathrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

var (
	fakeFirst = []string{"Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Frances", "Tim", "Radia", "Ken", "Margaret"}
	fakeLast  = []string{"Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Knuth", "Allen", "Berners-Lee", "Perlman", "Thompson", "Hamilton"}
	fakeLang  = []string{"en", "es", "fr", "vi", "zh"}
	fakeForms = []string{"PHQ-9", "GAD-7", "AUDIT-C", "Falls risk"}
	fakeCDTs  = []string{"Vitals", "Medications", "Insurance", "Social needs"}
	fakeStaff = []string{"Sam Rivera, RN", "Alex Kim, MD", "Jo Park, Care coordinator"}
)

func (f *faker) pick(list []string) string { return list[f.r.IntN(len(list))] }

// uuid returns a random version 4 UUID drawn from the faker's stream.
func (f *faker) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(f.r.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// event makes up one event of subtype, about patient (a new made-up one
// when "").
func (f *faker) event(entity, subtype, patient string) client.Event {
	if patient == "" {
		patient = f.uuid()
	}
	first, last := f.pick(fakeFirst), f.pick(fakeLast)
	staff := f.pick(fakeStaff)
	e := client.Event{
		EventEntity: entity, EventSubtype: subtype, PatientID: patient,
		InitiatedBy: "USER", InitiatedByName: staff, InitiatedByObjectType: "USER",
		InitiatedByObjectID: f.uuid(), InitiatedTime: time.Now().UTC().Format(herald.TimestampFormat),
	}
	var data map[string]any
	switch entity {
	case "PATIENT":
		e.SourceID, e.SourceName = patient, first+" "+last
		data = map[string]any{"firstName": first, "lastName": last,
			"birthDate":       fmt.Sprintf("%d-%02d-%02d", 1940+f.r.IntN(65), 1+f.r.IntN(12), 1+f.r.IntN(28)),
			"primaryLanguage": f.pick(fakeLang)}
	case "ASSESSMENT":
		form := f.pick(fakeForms)
		e.SourceID, e.SourceName = "asm-"+f.uuid()[:8], form
		data = map[string]any{"form": form, "score": f.r.IntN(28)}
	case "CDT":
		cdt := f.pick(fakeCDTs)
		e.SourceID, e.SourceName = "cdt-"+f.uuid()[:8], cdt
		data = map[string]any{"record": cdt, "heartRate": 55 + f.r.IntN(50), "systolic": 100 + f.r.IntN(50)}
	default:
		e.SourceID = strings.ToLower(strings.ReplaceAll(entity, "_", "-")) + "-" + f.uuid()[:8]
		e.SourceName = strings.ToLower(strings.ReplaceAll(entity, "_", " "))
		data = map[string]any{"sample": true}
	}
	e.URL = "https://care.example/" + strings.ToLower(entity) + "/" + e.SourceID
	e.Data, _ = json.Marshal(data)
	return e
}

// cliClientFlags defines the flags of herald emit and herald listen that
// say which Herald to talk to and as whom (see newCLIClient).
func cliClientFlags(fs *flag.FlagSet) (server, apiClient *string) {
	server = fs.String("server", envOr("HERALD_SERVER", "http://127.0.0.1:8080"), "Herald's base URL (env HERALD_SERVER)")
	apiClient = fs.String("api-client", envOr("HERALD_API_CLIENT", ""), "API client to sign in as, with the secret in env HERALD_API_SECRET (env HERALD_API_CLIENT)")
	return server, apiClient
}

// newCLIClient is the API client of herald emit and herald listen: it
// sends HERALD_TOKEN when set, else signs in as apiClient (--api-client,
// env HERALD_API_CLIENT) with the secret in HERALD_API_SECRET.
func newCLIClient(server, apiClient string) (*client.Client, error) {
	var opt client.Option
	switch token := os.Getenv("HERALD_TOKEN"); {
	case token != "":
		opt = client.WithToken(token)
	case apiClient != "":
		secret := os.Getenv("HERALD_API_SECRET")
		if secret == "" {
			return nil, fmt.Errorf("--api-client %s needs its secret in HERALD_API_SECRET", apiClient)
		}
		opt = client.WithAPIClient(apiClient, secret)
	default:
		return nil, errors.New("no credentials: set HERALD_TOKEN, or HERALD_API_CLIENT and HERALD_API_SECRET")
	}
	return client.New(server, opt)
}
