// Package signature signs and verifies webhook requests the Standard
// Webhooks way (https://www.standardwebhooks.com): the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>", the signature is
// "v1,<base64 HMAC-SHA256>", and secrets are "whsec_<base64 key>".
//
// Receivers may import this package to verify Herald's requests; any
// Standard Webhooks library verifies them too.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names Herald sends on every request.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a request's timestamp may be from the
// receiver's clock before Verify refuses it (replay protection).
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify.
var (
	ErrMissingHeaders = errors.New("signature: missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrBadTimestamp   = errors.New("signature: webhook-timestamp is not unix seconds")
	ErrTooOld         = errors.New("signature: webhook-timestamp is too old")
	ErrTooNew         = errors.New("signature: webhook-timestamp is too far in the future")
	ErrNoMatch        = errors.New("signature: no signature matches")
)

// key decodes a "whsec_" secret into its HMAC key.
func key(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("signature: secret is not whsec_ followed by base64: %w", err)
	}
	return k, nil
}

func mac(k []byte, msgID string, ts time.Time, body []byte) []byte {
	h := hmac.New(sha256.New, k)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the signature of one message with one secret:
// "v1," and the base64 HMAC-SHA256 of "msgID.unixSeconds.body".
// It fails only when secret is not a valid "whsec_" secret.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(k, msgID, ts, body)), nil
}

// SignAll returns the webhook-signature header value for several secrets:
// their signatures separated by spaces, in order. Herald sends the current
// secret and, during a rotation's grace period, the old one too, so
// receivers can switch secrets without dropping a request.
func SignAll(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sig, err := Sign(s, msgID, ts, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// Verify checks a received request: its timestamp is within tolerance of
// now (DefaultTolerance when zero) and one of the webhook-signature entries
// is body's v1 signature under secret. It returns nil, or one of the errors
// above (wrapped) saying which check failed.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsRaw, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	ts := time.Unix(sec, 0)
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	if now.Sub(ts) > tolerance {
		return ErrTooOld
	}
	if ts.Sub(now) > tolerance {
		return ErrTooNew
	}
	k, err := key(secret)
	if err != nil {
		return err
	}
	want := mac(k, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatch
}
