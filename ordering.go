package herald

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// Orderings of a webhook's deliveries (Webhook.Ordering). With "patient"
// the deliveries of events with the same patientId go to the webhook one at
// a time, in the order the events were accepted; with "source", the same
// for sourceId; with "none" (the default) every delivery goes as soon as
// it is due. Events without the key (no patientId, say) are not ordered.
// The chain rules are in lifecycle.go (Hold, Unhold, Chained); the store
// keeps the chains (docs/decisions/0020-ordering-per-key.md).
const (
	OrderingNone    = "none"
	OrderingPatient = "patient"
	OrderingSource  = "source"
)

// Orderings lists the valid values of Webhook.Ordering.
var Orderings = []string{OrderingNone, OrderingPatient, OrderingSource}

// OrderingOrDefault returns o, or OrderingNone when o is "".
func OrderingOrDefault(o string) string {
	if o == "" {
		return OrderingNone
	}
	return o
}

// validateOrdering returns an EINVALID error naming the field "ordering"
// when o is not one of Orderings ("" is the default, none).
func validateOrdering(o string) error {
	if o == "" || slices.Contains(Orderings, o) {
		return nil
	}
	return FieldErrorf("ordering", "ordering %q is not known; use one of %s.", o, strings.Join(Orderings, ", "))
}

// OrderKey returns the key by which a webhook with ordering o orders the
// delivery of event e: a hash of the ordering and e's patientId or
// sourceId, so that the store never keeps the id a second time; "" when o
// is none or e has no such id (its delivery is not ordered).
func OrderKey(o string, e *Event) string {
	var id string
	switch o {
	case OrderingPatient:
		id = e.PatientID
	case OrderingSource:
		id = e.SourceID
	}
	if id == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(o + "\x00" + id))
	return hex.EncodeToString(sum[:16])
}
