package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashSecret(t *testing.T) {
	ctx := context.Background()
	h1, err := hashSecret(ctx, "hsk_one")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := hashSecret(ctx, "hsk_one")
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(h1) {
		t.Fatalf("hash %q is not an argon2id PHC string with m=19456,t=2,p=1, a 16-byte salt and a 32-byte key", h1)
	}
	if h1 == h2 {
		t.Fatal("two hashes of one secret are equal: no salt")
	}
	for _, tc := range []struct {
		secret, hash string
		match        bool
	}{
		{"hsk_one", h1, true},
		{"hsk_one", h2, true},
		{"hsk_two", h1, false},
		{"", h1, false},
		{"hsk_one", strings.Replace(h1, "t=2", "t=3", 1), false}, // other parameters, other hash
	} {
		match, legacy, err := checkSecret(ctx, tc.secret, tc.hash)
		if err != nil || legacy || match != tc.match {
			t.Errorf("checkSecret(%q, %q) = %v, %v, %v; want %v", tc.secret, tc.hash, match, legacy, err, tc.match)
		}
	}
}

func TestCheckSecretLegacyAndMalformedHashes(t *testing.T) {
	ctx := context.Background()
	sum := sha256.Sum256([]byte("hsk_old"))
	legacyHash := hex.EncodeToString(sum[:])
	match, legacy, err := checkSecret(ctx, "hsk_old", legacyHash)
	if err != nil || !match || !legacy {
		t.Fatalf("the SHA-256 hash of an earlier version: match %v, legacy %v, %v; want both", match, legacy, err)
	}
	match, legacy, _ = checkSecret(ctx, "hsk_other", legacyHash)
	if match || !legacy {
		t.Fatalf("a wrong secret against a SHA-256 hash: match %v, legacy %v", match, legacy)
	}
	for _, h := range []string{
		"",
		"plain",
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
		"$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
		// Parameters a tampered row might ask for: refused, not computed.
		"$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
		"$argon2id$v=19$m=19456,t=1000,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
		"$argon2id$v=19$m=19456,t=2,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
	} {
		before := hashes.Load()
		match, legacy, err := checkSecret(ctx, "hsk_x", h)
		if err != nil || match || legacy {
			t.Errorf("checkSecret against %q = %v, %v, %v; want no match", h, match, legacy, err)
		}
		if n := hashes.Load() - before; n != 1 {
			t.Errorf("checkSecret against %q computed %d hashes, want 1 like any other check", h, n)
		}
	}
}

func TestSecretIDs(t *testing.T) {
	secret, id := newSecret()
	if !strings.HasPrefix(secret, "hsk_") || len(secret) != 4+54 || len(id) != 16 {
		t.Fatalf("newSecret() = %q, %q", secret, id)
	}
	if got := secretID(secret); got != id {
		t.Fatalf("secretID(%q) = %q, want %q", secret, got, id)
	}
	other, otherID := newSecret()
	if other == secret || otherID == id {
		t.Fatal("two new secrets are equal")
	}
	for _, s := range []string{"", "change-me-admin-secret", "hsk_" + strings.Repeat("A", 43), "hsk_" + strings.Repeat("!", 54), "xsk_" + secret[4:]} {
		if got := secretID(s); got != "" {
			t.Errorf("secretID(%q) = %q, want none", s, got)
		}
	}
}

func TestHashSlotsWaitForTheContext(t *testing.T) {
	for range cap(hashSlots) {
		hashSlots <- struct{}{}
	}
	defer func() {
		for range cap(hashSlots) {
			<-hashSlots
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := hashSecret(ctx, "hsk_x"); err != context.Canceled {
		t.Fatalf("hashSecret with every slot taken and the context ended = %v, want context.Canceled", err)
	}
}

// BenchmarkHashSecret is the figure docs/operations.md quotes: the time
// of one argon2id hash with the parameters of new hashes.
func BenchmarkHashSecret(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := hashSecret(ctx, "hsk_benchmark-secret"); err != nil {
			b.Fatal(err)
		}
	}
}
