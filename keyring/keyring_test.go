package keyring_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/heraldhooks/herald/keyring"
)

func mustParse(t *testing.T, spec string) *keyring.Ring {
	t.Helper()
	r, err := keyring.Parse(spec)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

func TestSealOpen(t *testing.T) {
	a := keyring.Generate()
	r := mustParse(t, a)
	sealed := r.SealString("whsec_secret", "webhook_secrets.secret:wh_1")
	if strings.Contains(sealed, "whsec_secret") || !keyring.IsSealed(sealed) || keyring.SealedBy(sealed) != r.ID() {
		t.Fatalf("sealed = %q", sealed)
	}
	if again := r.SealString("whsec_secret", "webhook_secrets.secret:wh_1"); again == sealed {
		t.Fatal("two seals of the same value are equal: the nonce is not random")
	}
	got, err := r.OpenString(sealed, "webhook_secrets.secret:wh_1")
	if err != nil || got != "whsec_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Bound to its context: the same ciphertext in another row does not open.
	if _, err := r.Open(sealed, "webhook_secrets.secret:wh_2"); err == nil {
		t.Fatal("opened under another context")
	}
	// Altered: one byte of the ciphertext flipped.
	b := []byte(sealed)
	b[len(b)-3] ^= 1
	if _, err := r.Open(string(b), "webhook_secrets.secret:wh_1"); err == nil {
		t.Fatal("opened an altered value")
	}
	if _, err := r.Open("whsec_plain", "x"); err == nil {
		t.Fatal("opened a value that is not sealed")
	}
}

func TestRotation(t *testing.T) {
	a, b := keyring.Generate(), keyring.Generate()
	ra := mustParse(t, a)
	old := ra.SealString("v", "c")

	rba := mustParse(t, b+","+a)
	if got, err := rba.OpenString(old, "c"); err != nil || got != "v" {
		t.Fatalf("B,A opens A's value: %q, %v", got, err)
	}
	fresh := rba.SealString("v", "c")
	if keyring.SealedBy(fresh) == ra.ID() || keyring.SealedBy(fresh) != rba.ID() {
		t.Fatal("B,A seals under A, want B")
	}
	rb := mustParse(t, b)
	if _, err := rb.Open(old, "c"); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("B alone opening A's value: %v, want ErrUnknownKey", err)
	}
	if !rba.Has(ra.ID()) || rb.Has(ra.ID()) {
		t.Fatal("Has")
	}

	// Derived keys: per purpose, per master key, stable.
	idA, kA := ra.Derived("token")
	all := rba.DerivedAll("token")
	if !bytes.Equal(all[idA], kA) || len(all) != 2 {
		t.Fatal("DerivedAll does not hold A's token key")
	}
	if _, kA2 := ra.Derived("csrf"); bytes.Equal(kA, kA2) {
		t.Fatal("two purposes derive the same key")
	}
}

func TestParseErrors(t *testing.T) {
	good := keyring.Generate()
	for _, tc := range []struct{ spec, want string }{
		{"", "no master key"},
		{"not-base64!", "master key 1 of 1 is not base64"},
		{"c2hvcnQ=", "is 5 bytes, want 32"},
		{good + "," + good, "given twice"},
		{good + ",abc", "master key 2 of 2"},
	} {
		_, err := keyring.Parse(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.spec, err, tc.want)
		}
		if err != nil && len(good) > 0 && strings.Contains(err.Error(), good) {
			t.Errorf("Parse error shows the key: %v", err)
		}
	}
	// One per line, as a key file holds them.
	if r := mustParse(t, keyring.Generate()+"\n"+good+"\n"); len(r.IDs()) != 2 {
		t.Fatalf("IDs = %v", r.IDs())
	}
}

func TestRingNeverPrints(t *testing.T) {
	r := mustParse(t, keyring.Generate())
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s", r, r, r, r)} {
		if strings.Contains(s, "0x") || !strings.Contains(s, "[redacted]") {
			t.Fatalf("ring printed as %q", s)
		}
	}
}
