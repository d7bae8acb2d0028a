// Command receiver is a complete Herald webhook receiver in Go: it checks
// each request's signature with Herald's signature package, drops
// duplicates by webhook-id, answers 204 at once and does its work
// afterwards. Copy it and put your work in handle.
//
//	HERALD_WEBHOOK_SECRET=whsec_... LISTEN=127.0.0.1:3000 go run ./docs/receivers/go
//
// HERALD_WEBHOOK_SECRET is the webhook's secret (GET .../webhooks/{name}/secret), or for an
// ed25519 webhook its public key (whpk_..., GET .../webhooks/{name}/public-key); several,
// separated by commas, while a secret is being rotated. It prints the address it listens on,
// then one line per event it takes, with the event's id and type: never the event's data,
// which is health data.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/heraldhooks/herald/signature"
)

// maxBody is the largest request taken; Herald's payloads are far smaller.
const maxBody = 1 << 20

// tolerance is how far a request's webhook-timestamp may be from now.
const tolerance = 5 * time.Minute

// seen remembers the webhook-ids taken in the last hour: Herald delivers at
// least once, so the same event may come again after a timeout or a crash.
// A real receiver keeps this in its database, in the transaction that does
// the work.
type seen struct {
	mu  sync.Mutex
	ids map[string]time.Time
}

// first reports whether id is new, and remembers it.
func (s *seen) first(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, at := range s.ids {
		if now.Sub(at) > time.Hour {
			delete(s.ids, k)
		}
	}
	if _, ok := s.ids[id]; ok {
		return false
	}
	s.ids[id] = now
	return true
}

// event is the part of Herald's payload this receiver reads: a webhook
// with the Welkin format (the default) sends eventEntity and eventSubtype,
// one with the Standard Webhooks format sends type.
type event struct {
	ID           string `json:"-"` // the webhook-id header
	EventEntity  string `json:"eventEntity"`
	EventSubtype string `json:"eventSubtype"`
	Type         string `json:"type"`
}

func main() {
	keys := strings.Split(os.Getenv("HERALD_WEBHOOK_SECRET"), ",")
	if keys[0] == "" {
		log.Fatal("set HERALD_WEBHOOK_SECRET to the webhook's whsec_ secret or whpk_ public key")
	}
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = "127.0.0.1:3000"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())

	dedupe := &seen{ids: map[string]time.Time{}}
	work := make(chan event, 1024)
	go func() {
		for e := range work {
			handle(e)
		}
	}()

	http.HandleFunc("POST /hooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			http.Error(w, "could not read the body", http.StatusBadRequest)
			return
		}
		if !verified(keys, r.Header, body) {
			// 401: Herald retries it, and its delivery log shows the answer.
			http.Error(w, "signature does not verify", http.StatusUnauthorized)
			return
		}
		var e event
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, "body is not JSON", http.StatusBadRequest)
			return
		}
		e.ID = r.Header.Get("webhook-id")
		if !dedupe.first(e.ID, time.Now()) {
			w.WriteHeader(http.StatusNoContent) // taken before: say yes again
			return
		}
		// Answer first, work after: a slow answer is a timeout, and a
		// timeout is retried.
		select {
		case work <- e:
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "busy", http.StatusServiceUnavailable) // retried later
		}
	})
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// verified reports whether any of the keys verifies the request.
func verified(keys []string, h http.Header, body []byte) bool {
	for _, k := range keys {
		if signature.Verify(strings.TrimSpace(k), h, body, time.Now(), tolerance) == nil {
			return true
		}
	}
	return false
}

// handle is where a receiver does its work. This one prints the event's
// id and type.
func handle(e event) {
	kind := e.EventSubtype
	if kind == "" {
		kind = e.Type
	}
	fmt.Printf("received %s %s\n", e.ID, kind)
}
