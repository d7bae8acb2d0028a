package signature_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/heraldhooks/herald/signature"
)

// The example of the Standard Webhooks specification (spec/standard-webhooks.md,
// "Signature scheme"): this secret, id, timestamp and body give this signature.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesSpecExample(t *testing.T) {
	got, err := signature.Sign(specSecret, specID, time.Unix(specTimestamp, 0), []byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != specSignature {
		t.Fatalf("Sign = %s, want the spec's %s", got, specSignature)
	}
}

func TestSignAllVerifiesWithStandardLibrary(t *testing.T) {
	now := time.Now()
	old, current := "whsec_"+"b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZC1zZWNyZXQ=", specSecret
	sig, err := signature.SignAll([]string{current, old}, "evt_1", now, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(signature.HeaderID, "evt_1")
	h.Set(signature.HeaderTimestamp, fmt.Sprint(now.Unix()))
	h.Set(signature.HeaderSignature, sig)
	// Both secrets verify during a rotation, with the public library and ours.
	for _, s := range []string{current, old} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify([]byte(`{"a":1}`), h); err != nil {
			t.Errorf("standard-webhooks Verify with %s: %v", s, err)
		}
		if err := signature.Verify(s, h, []byte(`{"a":1}`), now, 0); err != nil {
			t.Errorf("signature.Verify with %s: %v", s, err)
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	now := time.Unix(specTimestamp, 0)
	good := func() http.Header {
		h := http.Header{}
		h.Set(signature.HeaderID, specID)
		h.Set(signature.HeaderTimestamp, fmt.Sprint(specTimestamp))
		h.Set(signature.HeaderSignature, specSignature)
		return h
	}
	for _, tc := range []struct {
		name string
		edit func(h http.Header) []byte
		now  time.Time
		want error
	}{
		{"good", func(http.Header) []byte { return []byte(specBody) }, now, nil},
		{"body changed", func(http.Header) []byte { return []byte(`{"test": 1}`) }, now, signature.ErrNoMatch},
		{"id changed", func(h http.Header) []byte { h.Set(signature.HeaderID, "msg_other"); return []byte(specBody) }, now, signature.ErrNoMatch},
		{"no signature", func(h http.Header) []byte { h.Del(signature.HeaderSignature); return []byte(specBody) }, now, signature.ErrMissingHeaders},
		{"bad timestamp", func(h http.Header) []byte { h.Set(signature.HeaderTimestamp, "yesterday"); return []byte(specBody) }, now, signature.ErrBadTimestamp},
		{"replayed later", func(http.Header) []byte { return []byte(specBody) }, now.Add(10 * time.Minute), signature.ErrTooOld},
		{"from the future", func(http.Header) []byte { return []byte(specBody) }, now.Add(-10 * time.Minute), signature.ErrTooNew},
		{"unknown version only", func(h http.Header) []byte {
			h.Set(signature.HeaderSignature, "v2,"+specSignature[3:])
			return []byte(specBody)
		}, now, signature.ErrNoMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := good()
			body := tc.edit(h)
			if err := signature.Verify(specSecret, h, body, tc.now, 0); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// A receiver checks each request before trusting it.
func ExampleVerify() {
	body := []byte(`{"eventId":"evt_1","eventSubtype":"PATIENT_CREATED"}`)
	ts := time.Unix(1764177060, 0)
	sig, _ := signature.Sign(specSecret, "evt_1", ts, body)

	h := http.Header{} // in a handler: r.Header
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", fmt.Sprint(ts.Unix()))
	h.Set("webhook-signature", sig)

	err := signature.Verify(specSecret, h, body, ts.Add(time.Second), 0)
	fmt.Println("authentic:", err == nil)
	// Output: authentic: true
}
