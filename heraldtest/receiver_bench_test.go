package heraldtest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/signature"
)

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// The receiver's own cost per request (verify, count, answer), as
// herald bench runs it: Forget, one secret per path, 1 KiB bodies. No
// network: ServeHTTP is called directly.
func BenchmarkReceiverForget(b *testing.B) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	rc, err := heraldtest.StartReceiver(heraldtest.ReceiverConfig{Forget: true})
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	rc.SetPathSecrets("/fast/0", secret)
	now := time.Now()
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		id := fmt.Sprintf("evt_%d", i)
		body := append([]byte(`{"eventId":"`+id+`","data":"`), bytes.Repeat([]byte("x"), 1000)...)
		body = append(body, `"}`...)
		sig, _ := signature.Sign(secret, id, now, body)
		r := httptest.NewRequest("POST", "http://127.0.0.1/fast/0", bytes.NewReader(body))
		r.Header.Set(signature.HeaderID, id)
		r.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		r.Header.Set(signature.HeaderSignature, sig)
		reqs[i] = r
	}
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for _, r := range reqs {
		rc.ServeHTTP(w, r)
	}
	b.StopTimer()
	if rc.Count() != b.N || rc.SignatureFailures() != 0 {
		b.Fatalf("%d requests, %d signature failures", rc.Count(), rc.SignatureFailures())
	}
}
