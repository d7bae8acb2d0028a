package access

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP is RFC 6238 as authenticator apps speak it: HMAC-SHA-1, 6 digits,
// 30-second steps from the Unix epoch. A code is accepted in its own step
// and one step either side, for clocks that differ a little and people who
// type slowly; each step is accepted once per user (the store records the
// last one), so a code seen over a shoulder cannot be used again.
const (
	totpPeriod = 30
	totpDigits = 6
	totpSkew   = 1
	// totpSecretSize is 160 bits, the size RFC 4226 recommends.
	totpSecretSize = 20
)

var totpEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newTOTPSecret returns a new random TOTP secret in base32, as it is
// shown to people and put in otpauth:// URIs.
func newTOTPSecret() string {
	b := make([]byte, totpSecretSize)
	_, _ = rand.Read(b)
	return totpEncoding.EncodeToString(b)
}

// totpStep is the time step now falls in.
func totpStep(now time.Time) int64 { return now.Unix() / totpPeriod }

// hotp returns the code of counter under key (RFC 4226 section 5.3),
// with digits digits.
func hotp(key []byte, counter int64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// TOTPCode returns the 6-digit code of a base32 secret at t: what an
// authenticator app shows. Tests and the enrolment page use it; an error
// means the secret is not base32.
func TOTPCode(secret string, t time.Time) (string, error) {
	key, err := decodeTOTPSecret(secret)
	if err != nil {
		return "", err
	}
	return hotp(key, totpStep(t), totpDigits), nil
}

func decodeTOTPSecret(secret string) ([]byte, error) {
	return totpEncoding.DecodeString(strings.ToUpper(strings.ReplaceAll(secret, " ", "")))
}

// checkTOTP returns the step whose code code is, within the skew around
// now; ok is false when it is none of them. Every candidate is compared,
// in constant time.
func checkTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	key, err := decodeTOTPSecret(secret)
	code = strings.ReplaceAll(code, " ", "")
	if err != nil || len(key) == 0 || len(code) != totpDigits {
		return 0, false
	}
	cur := totpStep(now)
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		if subtle.ConstantTimeCompare([]byte(hotp(key, s, totpDigits)), []byte(code)) == 1 && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}

// TOTPURI returns the otpauth:// URI an authenticator app enrols from
// (Google Authenticator's Key Uri Format): issuer and account label, the
// secret, and the parameters spelled out.
func TOTPURI(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(totpDigits))
	v.Set("period", fmt.Sprint(totpPeriod))
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	return "otpauth://totp/" + label + "?" + v.Encode()
}
