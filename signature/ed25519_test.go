package signature_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/signature"
)

// header is what a request carries for id, ts and the signature sig.
func header(id string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(signature.HeaderID, id)
	h.Set(signature.HeaderTimestamp, fmt.Sprint(ts.Unix()))
	h.Set(signature.HeaderSignature, sig)
	return h
}

func TestKeyPairShapes(t *testing.T) {
	priv, pub := signature.NewKeyPair()
	if !strings.HasPrefix(priv, "whsk_") || !strings.HasPrefix(pub, "whpk_") {
		t.Fatalf("key pair = %.8s..., %.8s...; want whsk_ and whpk_", priv, pub)
	}
	raw, err := base64.StdEncoding.DecodeString(pub[len("whpk_"):])
	if err != nil || len(raw) != ed25519.PublicKeySize {
		t.Fatalf("public key is %d bytes (%v), want %d", len(raw), err, ed25519.PublicKeySize)
	}
	if got, err := signature.PublicKey(priv); err != nil || got != pub {
		t.Fatalf("PublicKey(private) = %s, %v; want %s", got, err, pub)
	}
	if !signature.IsPrivateKey(priv) || signature.IsPrivateKey(pub) || signature.IsPrivateKey(specSecret) {
		t.Fatal("IsPrivateKey does not tell a whsk_ key from the others")
	}
}

// A v1a signature is the plain ed25519 signature of "id.ts.body",
// checked here with crypto/ed25519 alone, as a receiver that does not
// import this package would.
func TestSignV1aIsEd25519OfTheSignedContent(t *testing.T) {
	priv, pub := signature.NewKeyPair()
	ts := time.Unix(specTimestamp, 0)
	sig, err := signature.Sign(priv, specID, ts, []byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	version, b64, _ := strings.Cut(sig, ",")
	if version != "v1a" {
		t.Fatalf("signature %q does not start with v1a,", sig)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(pub, "whpk_"))
	content := fmt.Sprintf("%s.%d.%s", specID, specTimestamp, specBody)
	if !ed25519.Verify(pk, []byte(content), raw) {
		t.Fatal("crypto/ed25519 does not verify the v1a signature over id.timestamp.body")
	}
	if ed25519.Verify(pk, []byte(content+" "), raw) {
		t.Fatal("the signature verifies a different content")
	}
}

// During a switch or rotation Herald signs with several keys of both
// kinds; each receiver finds its own among them.
func TestSignAllMixedVerifiesWithEachKey(t *testing.T) {
	now := time.Now()
	newPriv, newPub := signature.NewKeyPair()
	oldPriv, oldPub := signature.NewKeyPair()
	body := []byte(`{"a":1}`)
	sig, err := signature.SignAll([]string{newPriv, oldPriv, specSecret}, "evt_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Fields(sig)
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "v1a,") || !strings.HasPrefix(parts[1], "v1a,") || !strings.HasPrefix(parts[2], "v1,") {
		t.Fatalf("webhook-signature = %q; want v1a, v1a, v1 in key order", sig)
	}
	for _, k := range []string{newPub, oldPub, specSecret} {
		if err := signature.Verify(k, header("evt_1", now, sig), body, now, 0); err != nil {
			t.Errorf("Verify with %.10s...: %v", k, err)
		}
	}
	// A key that did not sign finds no match.
	_, stranger := signature.NewKeyPair()
	if err := signature.Verify(stranger, header("evt_1", now, sig), body, now, 0); !errors.Is(err, signature.ErrNoMatch) {
		t.Fatalf("Verify with another public key = %v, want ErrNoMatch", err)
	}
}

func TestVerifyV1aRefuses(t *testing.T) {
	priv, pub := signature.NewKeyPair()
	now := time.Unix(specTimestamp, 0)
	body := []byte(specBody)
	sig, err := signature.Sign(priv, specID, now, body)
	if err != nil {
		t.Fatal(err)
	}
	hmacSig, _ := signature.Sign(specSecret, specID, now, body)
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "v1a,"))
	raw[10] ^= 1
	flipped := "v1a," + base64.StdEncoding.EncodeToString(raw)
	for _, tc := range []struct {
		name string
		key  string
		h    http.Header
		body []byte
		want error
	}{
		{"good", pub, header(specID, now, sig), body, nil},
		{"good among others", pub, header(specID, now, hmacSig+" v1a,bm90LWEtc2ln "+sig), body, nil},
		{"body changed", pub, header(specID, now, sig), []byte(`{"test": 1}`), signature.ErrNoMatch},
		{"id changed", pub, header("msg_other", now, sig), body, signature.ErrNoMatch},
		{"timestamp changed", pub, header(specID, now.Add(time.Second), sig), body, signature.ErrNoMatch},
		{"signature altered", pub, header(specID, now, flipped), body, signature.ErrNoMatch},
		{"v1 only", pub, header(specID, now, hmacSig), body, signature.ErrNoMatch},
		{"v1a bytes labelled v1", pub, header(specID, now, "v1,"+strings.TrimPrefix(sig, "v1a,")), body, signature.ErrNoMatch},
		{"v1a does not pass for the secret", specSecret, header(specID, now, sig), body, signature.ErrNoMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := signature.Verify(tc.key, tc.h, tc.body, now, 0); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if err := signature.Verify(priv, header(specID, now, sig), body, now, 0); err == nil || !strings.Contains(err.Error(), "public key") {
		t.Fatalf("Verify with the private key = %v, want an error asking for the public key", err)
	}
	if err := signature.Verify("whpk_c2hvcnQ=", header(specID, now, sig), body, now, 0); err == nil || errors.Is(err, signature.ErrNoMatch) {
		t.Fatalf("Verify with a short public key = %v, want a key error", err)
	}
}

func TestSignRefusesBadPrivateKey(t *testing.T) {
	for _, k := range []string{"whsk_not base64", "whsk_c2hvcnQ="} {
		if _, err := signature.Sign(k, "evt_1", time.Now(), nil); err == nil {
			t.Errorf("Sign with %q succeeded", k)
		}
	}
	// A bad key anywhere in the list fails the whole header, rather than
	// sending fewer signatures than the receiver expects.
	priv, _ := signature.NewKeyPair()
	if _, err := signature.SignAll([]string{priv, "whsk_c2hvcnQ="}, "evt_1", time.Now(), nil); err == nil {
		t.Error("SignAll with a bad second key succeeded")
	}
}

// A Signer decodes its keys once and signs any number of requests.
func TestSignerMatchesSign(t *testing.T) {
	priv, _ := signature.NewKeyPair()
	keys := []string{priv, specSecret}
	s := signature.NewSigner(keys)
	for i := range 3 {
		id := fmt.Sprintf("evt_%d", i)
		ts := time.Unix(specTimestamp+int64(i), 0)
		got, err := s.Sign(id, ts, []byte(specBody))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := signature.SignAll(keys, id, ts, []byte(specBody))
		if got != want { // ed25519 signatures are deterministic
			t.Fatalf("Signer.Sign = %s, SignAll = %s", got, want)
		}
	}
	if got, _ := s.Sign(specID, time.Unix(specTimestamp, 0), []byte(specBody)); !strings.HasSuffix(got, " "+specSignature) {
		t.Fatalf("the HMAC part %q is not the spec's %s", got, specSignature)
	}
}

// A receiver of an ed25519 webhook verifies with the public key from
// GET .../webhooks/{name}/public-key; it holds nothing that can sign.
func ExampleVerify_ed25519() {
	private, public := signature.NewKeyPair() // Herald keeps private
	body := []byte(`{"eventId":"evt_1","eventSubtype":"PATIENT_CREATED"}`)
	ts := time.Unix(1764177060, 0)
	sig, _ := signature.Sign(private, "evt_1", ts, body)

	h := http.Header{} // in a handler: r.Header
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", fmt.Sprint(ts.Unix()))
	h.Set("webhook-signature", sig)

	err := signature.Verify(public, h, body, ts.Add(time.Second), 0)
	fmt.Println(strings.SplitN(sig, ",", 2)[0], "authentic:", err == nil)
	// Output: v1a authentic: true
}
