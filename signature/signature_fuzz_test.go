package signature_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/signature"
)

// FuzzVerify: a request signed with Sign or SignAll always verifies
// under each of its keys (the shared secret, the ed25519 public key), and
// flipping any one bit of its webhook-id, webhook-timestamp, body or
// webhook-signature makes it fail with one of Verify's errors. Whatever
// arrives in the signature header, Verify accepts it only when one of its
// entries is exactly the right signature.
func FuzzVerify(f *testing.F) {
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", []byte(`{"test": 2432232314}`), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", uint16(0), uint8(0))
	f.Add("evt_2ZyQn4", []byte(`{"eventId":"evt_2ZyQn4","eventSubtype":"PATIENT_CREATED"}`), "v1,AAAA v1a,BBBB v2,x", uint16(7), uint8(3))
	f.Add("", []byte(nil), "", uint16(1), uint8(5))
	f.Add("id.with.dots", []byte("1.2.3"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=", uint16(200), uint8(6))
	f.Add("evt_1", []byte{0, 0xff, '\n'}, "v1a,"+strings.Repeat("A", 86)+"==", uint16(90), uint8(7))
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	private := signature.PrivateKeyPrefix + base64.StdEncoding.EncodeToString(seed)
	public, err := signature.PublicKey(private)
	if err != nil {
		f.Fatal(err)
	}
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	now := time.Unix(1674087231, 0)
	f.Fuzz(func(t *testing.T, id string, body []byte, rawSig string, flip uint16, bit uint8) {
		sig, err := signature.SignAll([]string{secret, private}, id, now, body)
		if err != nil {
			t.Fatal(err)
		}
		ts := strconv.FormatInt(now.Unix(), 10)
		headers := func(id, ts, sig string) http.Header {
			h := http.Header{}
			h.Set(signature.HeaderID, id)
			h.Set(signature.HeaderTimestamp, ts)
			h.Set(signature.HeaderSignature, sig)
			return h
		}
		for _, key := range []string{secret, public} {
			err := signature.Verify(key, headers(id, ts, sig), body, now, 0)
			if id == "" {
				if !errors.Is(err, signature.ErrMissingHeaders) {
					t.Fatalf("no webhook-id: Verify = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify(%.8s..., id %q) of what SignAll signed: %v", key, id, err)
			}
		}

		// One bit flipped anywhere: id, timestamp, body or the key's own
		// signature (the other key's entry does not concern it).
		want := strings.Fields(sig)
		for i, key := range []string{secret, public} {
			parts := [][]byte{[]byte(id), []byte(ts), bytes.Clone(body), []byte(want[i])}
			at := int(flip) % (len(id) + len(ts) + len(body) + len(want[i]))
			for j := range parts {
				if at < len(parts[j]) {
					parts[j][at] ^= 1 << (bit % 8)
					break
				}
				at -= len(parts[j])
			}
			err := signature.Verify(key, headers(string(parts[0]), string(parts[1]), string(parts[3])), parts[2], now, 0)
			if err == nil {
				t.Fatalf("Verify(%.8s...) accepted a flipped bit: id %q ts %q body %q sig %q", key, parts[0], parts[1], parts[2], parts[3])
			}
			if !isVerifyError(err) {
				t.Fatalf("Verify of a flipped bit failed with %v, not one of its errors", err)
			}
		}

		// Whatever the header says, only the exact signature passes.
		for i, key := range []string{secret, public} {
			err := signature.Verify(key, headers(id, ts, rawSig), body, now, 0)
			has := false
			for _, s := range strings.Fields(rawSig) {
				has = has || s == want[i]
			}
			if (err == nil) != has {
				t.Fatalf("Verify(%.8s..., signature header %q) = %v; the signature is %q", key, rawSig, err, want[i])
			}
			if err != nil && !isVerifyError(err) {
				t.Fatalf("Verify(signature header %q) failed with %v, not one of its errors", rawSig, err)
			}
		}
	})
}

func isVerifyError(err error) bool {
	for _, e := range []error{signature.ErrMissingHeaders, signature.ErrBadTimestamp, signature.ErrTooOld, signature.ErrTooNew, signature.ErrNoMatch} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
