package dispatch

import (
	"github.com/heraldhooks/herald"
)

// Held returns how many deliveries e holds (claimed, result not yet
// written) and for how many webhooks it waits on a 410 Gone to be written:
// both must come back to zero once the work is done.
func Held(e *Engine) (deliveries, gone int) {
	return e.q.held()
}

// ClientFor returns the HTTP client e sends w's requests with, and why w's
// client certificate cannot be used, if it cannot.
func ClientFor(e *Engine, w *herald.Webhook) (any, error) { return e.sender.clientFor(w) }

// CertClients returns how many clients with a client certificate e keeps.
func CertClients(e *Engine) int {
	e.sender.mu.Lock()
	defer e.sender.mu.Unlock()
	return len(e.sender.certClients)
}

// MaxCertClients is the bound on CertClients.
const MaxCertClients = maxCertClients

// Started reports whether e's Run has started its senders: before that a
// write hands nothing off (every new delivery is left PENDING for a claim).
func Started(e *Engine) bool {
	return e.q.started()
}
