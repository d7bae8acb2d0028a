package access

import (
	"encoding/base32"
	"strings"
	"testing"
	"time"
)

// TestTOTPVectors checks the SHA-1 test vectors of RFC 6238, Appendix B
// (8 digits there; the 6-digit code is their last six).
func TestTOTPVectors(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, c := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		if got := hotp(key, c.unix/30, 8); got != c.want {
			t.Errorf("T=%d: 8-digit code %s, want %s", c.unix, got, c.want)
		}
		secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(key)
		got, err := TOTPCode(secret, time.Unix(c.unix, 0))
		if err != nil || got != c.want[2:] {
			t.Errorf("T=%d: TOTPCode = %s, %v; want %s", c.unix, got, err, c.want[2:])
		}
	}
}

// TestTOTPWindow accepts the code of the step before and after, and
// nothing further.
func TestTOTPWindow(t *testing.T) {
	secret := newTOTPSecret()
	now := time.Unix(1_800_000_015, 0)
	for _, c := range []struct {
		at time.Time
		ok bool
	}{
		{now, true},
		{now.Add(-30 * time.Second), true},
		{now.Add(30 * time.Second), true},
		{now.Add(-60 * time.Second), false},
		{now.Add(60 * time.Second), false},
	} {
		code, _ := TOTPCode(secret, c.at)
		if step, ok := checkTOTP(secret, code, now); ok != c.ok || (ok && step != totpStep(c.at)) {
			t.Errorf("code of %v checked at %v: ok %v step %d, want ok %v", c.at, now, ok, step, c.ok)
		}
	}
	if _, ok := checkTOTP(secret, "12345", now); ok {
		t.Error("a 5-digit code was accepted")
	}
}

func TestTOTPURI(t *testing.T) {
	uri := TOTPURI("Herald", "jane@example.com", "JBSWY3DPEHPK3PXP")
	for _, want := range []string{"otpauth://totp/Herald:jane@example.com?", "secret=JBSWY3DPEHPK3PXP", "issuer=Herald", "algorithm=SHA1", "digits=6", "period=30"} {
		if !strings.Contains(uri, want) {
			t.Errorf("URI %s lacks %s", uri, want)
		}
	}
}
