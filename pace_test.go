package herald_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/heraldhooks/herald"
)

// TestRateLimitUpdateJSON: a PATCH's rateLimitPerSecond is kept when left
// out, cleared by null and set by a number, both ways through JSON, so a
// WebhookUpdate built in Go (the client) says what it means.
func TestRateLimitUpdateJSON(t *testing.T) {
	twenty := 20
	for _, tt := range []struct {
		name string
		json string
		upd  herald.RateLimitUpdate
	}{
		{"left out keeps it", `{}`, herald.RateLimitUpdate{}},
		{"null clears it", `{"rateLimitPerSecond":null}`, herald.RateLimitUpdate{Set: true}},
		{"a number sets it", `{"rateLimitPerSecond":20}`, herald.RateLimitUpdate{Set: true, Value: &twenty}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var u herald.WebhookUpdate
			if err := json.Unmarshal([]byte(tt.json), &u); err != nil {
				t.Fatal(err)
			}
			got := u.RateLimitPerSecond
			if got.Set != tt.upd.Set || (got.Value == nil) != (tt.upd.Value == nil) || (got.Value != nil && *got.Value != *tt.upd.Value) {
				t.Errorf("%s decodes to %+v, want %+v", tt.json, got, tt.upd)
			}
			b, err := json.Marshal(herald.WebhookUpdate{RateLimitPerSecond: tt.upd})
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			v, ok := back["rateLimitPerSecond"]
			switch {
			case ok != tt.upd.Set:
				t.Errorf("%+v encodes as %s: rateLimitPerSecond present %v, want %v", tt.upd, b, ok, tt.upd.Set)
			case tt.upd.Value == nil && v != nil, tt.upd.Value != nil && v != float64(*tt.upd.Value):
				t.Errorf("%+v encodes rateLimitPerSecond as %v", tt.upd, v)
			}
		})
	}
	var u herald.WebhookUpdate
	err := json.Unmarshal([]byte(`{"rateLimitPerSecond":"20"}`), &u)
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field != "rateLimitPerSecond" {
		t.Errorf("a string for rateLimitPerSecond: %v; want a type error naming the field", err)
	}
}
