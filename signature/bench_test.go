package signature_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/heraldhooks/herald/signature"
)

// BenchmarkSign signs a 1 KiB body with two secrets, as during a secret's
// grace period.
func BenchmarkSign(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	secrets := []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}
	now := time.Now()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := signature.SignAll(secrets, "msg_2Zy", now, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignerEd25519 signs a 1 KiB body with two ed25519 keys decoded
// once, as a sender does during a key rotation's grace period.
func BenchmarkSignerEd25519(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	k1, _ := signature.NewKeyPair()
	k2, _ := signature.NewKeyPair()
	s := signature.NewSigner([]string{k1, k2})
	now := time.Now()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := s.Sign("msg_2Zy", now, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignerHMAC is BenchmarkSign as the senders do it: the two
// secrets decoded once, ahead of the requests.
func BenchmarkSignerHMAC(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	s := signature.NewSigner([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"})
	now := time.Now()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := s.Sign("msg_2Zy", now, body); err != nil {
			b.Fatal(err)
		}
	}
}
