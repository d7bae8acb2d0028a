package dispatch

// Held returns how many deliveries e holds (claimed, result not yet
// written) and for how many webhooks it waits on a 410 Gone to be written:
// both must come back to zero once the work is done.
func Held(e *Engine) (deliveries, gone int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.held), len(e.gone)
}
