package storetest

import "github.com/heraldhooks/herald"

func init() {
	// An event's trace parent comes back with every delivery claimed from
	// it, on any node and after any restart, so the attempt spans join the
	// trace it was accepted in; an event stored without one has none.
	register("EventTraceParentSurvivesTheQueue", func(e *env) {
		e.setup("acme", "live", hook{name: "sync", triggers: []herald.Trigger{subtype("PATIENT_CREATED")}})
		traced := event("acme", "live", "PATIENT_CREATED")
		const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		traced.TraceParent = tp
		plain := event("acme", "live", "PATIENT_CREATED")
		res := e.create(traced, plain)

		jobs := e.claim("node-a", 10, 10)
		if len(jobs) != 2 {
			e.Fatalf("claimed %d jobs, want 2", len(jobs))
		}
		for _, j := range jobs {
			want := ""
			if j.Event.ID == res[0].EventID {
				want = tp
			}
			if j.Event.TraceParent != want {
				e.Errorf("claimed event %s has trace parent %q, want %q", j.Event.ID, j.Event.TraceParent, want)
			}
		}
		got, err := e.S.GetEvent(e.Ctx, "acme", "live", res[0].EventID)
		e.must(err)
		if got.TraceParent != tp {
			e.Errorf("GetEvent trace parent = %q, want %q", got.TraceParent, tp)
		}
	})
}
