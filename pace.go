package herald

import (
	"encoding/json"
	"reflect"
)

// MaxRateLimitPerSecond is the highest rateLimitPerSecond a webhook may
// have. A webhook's limit caps the requests Herald sends it per second,
// across all nodes; the engine keeps it (package dispatch) with one-second
// windows of request slots that the nodes share through the store
// (queue.Store.TakeSlots). docs/decisions/0021-adaptive-pace.md says how.
const MaxRateLimitPerSecond = 10000

// RateLimitUpdate is a PATCH of a webhook's rateLimitPerSecond: left out
// (Set false) it keeps the limit, null clears it (no limit), a number sets
// it.
type RateLimitUpdate struct {
	Set   bool
	Value *int
}

// MarshalJSON writes null or the limit. WebhookUpdate leaves an unset
// RateLimitUpdate out (omitzero), so a PATCH built from it keeps the limit.
func (u RateLimitUpdate) MarshalJSON() ([]byte, error) {
	if u.Value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*u.Value)
}

// UnmarshalJSON reads null or an integer; anything else is an
// *json.UnmarshalTypeError, which the decoder names the field in.
func (u *RateLimitUpdate) UnmarshalJSON(b []byte) error {
	u.Set = true
	if string(b) == "null" {
		u.Value = nil
		return nil
	}
	var v int
	if err := json.Unmarshal(b, &v); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeOf(v)}
	}
	u.Value = &v
	return nil
}

// jsonKind names the kind of the JSON value b, as json.UnmarshalTypeError
// does.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "value"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// validateRateLimit returns an EINVALID error naming rateLimitPerSecond
// unless limit is nil (no limit) or within 1 and MaxRateLimitPerSecond.
func validateRateLimit(limit *int) error {
	if limit != nil && (*limit < 1 || *limit > MaxRateLimitPerSecond) {
		return FieldErrorf("rateLimitPerSecond", "rateLimitPerSecond must be between 1 and %d requests per second, or null for no limit; it is %d.", MaxRateLimitPerSecond, *limit)
	}
	return nil
}

// WebhookPace is how one node paces a webhook's requests now: the
// requests it may have in flight (its adaptive window within its maximum,
// or 1 while its circuit breaker is open) and how many are. Each node
// paces on its own; the rate limit is the only cap shared by all nodes.
type WebhookPace struct {
	InFlightLimit int `json:"inFlightLimit"`
	Max           int `json:"max"`
	InFlight      int `json:"inFlight"`
}

// Pacer tells how this node paces a webhook's requests now, by webhook
// ID; for a webhook it has not sent to lately, the pace it would start
// with. dispatch.Engine implements it; the API and the web UI show it.
type Pacer interface {
	Pace(webhookID string) WebhookPace
}
