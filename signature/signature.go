// Package signature signs and verifies webhook requests the Standard
// Webhooks way (https://www.standardwebhooks.com): the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>", and it is signed either with
// a shared secret ("whsec_<base64 key>"), giving "v1,<base64 HMAC-SHA256>",
// or with an ed25519 private key ("whsk_..."), giving "v1a,<base64
// ed25519 signature>" that receivers verify with the public key
// ("whpk_...") alone (ed25519.go).
//
// Receivers may import this package to verify Herald's requests; any
// Standard Webhooks library verifies them too.
package signature

import (
	"crypto/ed25519"
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

// secretKey decodes a "whsec_" secret into its HMAC key.
func secretKey(secret string) ([]byte, error) {
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

// content is the signed content "msgID.unixSeconds.body", for ed25519,
// which signs a whole message rather than a stream.
func content(msgID string, ts time.Time, body []byte) []byte {
	c := make([]byte, 0, len(msgID)+22+len(body))
	c = append(c, msgID...)
	c = append(c, '.')
	c = strconv.AppendInt(c, ts.Unix(), 10)
	c = append(c, '.')
	return append(c, body...)
}

// Sign returns the signature of one message with one key: for a "whsec_"
// secret, "v1," and the base64 HMAC-SHA256 of "msgID.unixSeconds.body";
// for a "whsk_" ed25519 private key, "v1a," and the base64 ed25519
// signature of the same content. It fails only when the key does not
// decode.
func Sign(key, msgID string, ts time.Time, body []byte) (string, error) {
	return NewSigner([]string{key}).Sign(msgID, ts, body)
}

// SignAll returns the webhook-signature header value for several keys:
// their signatures separated by spaces, in order. Herald sends the current
// key and, during a rotation's grace period, the old one too, so
// receivers can switch keys without dropping a request.
func SignAll(keys []string, msgID string, ts time.Time, body []byte) (string, error) {
	return NewSigner(keys).Sign(msgID, ts, body)
}

// Signer signs with several keys decoded once: a sender builds one per
// webhook and batch of deliveries, not one per request.
type Signer struct {
	hmac [][]byte             // per key: the HMAC key, or nil
	ed   []ed25519.PrivateKey // per key: the ed25519 key, or nil
	err  error                // the first key that does not decode
}

// NewSigner decodes keys ("whsec_" secrets and "whsk_" private keys, the
// current one first). A key that does not decode makes every Sign fail
// with its error.
func NewSigner(keys []string) *Signer {
	s := &Signer{hmac: make([][]byte, len(keys)), ed: make([]ed25519.PrivateKey, len(keys))}
	for i, k := range keys {
		var err error
		if IsPrivateKey(k) {
			s.ed[i], err = privateKey(k)
		} else {
			s.hmac[i], err = secretKey(k)
		}
		if err != nil && s.err == nil {
			s.err = err
		}
	}
	return s
}

// Sign returns the webhook-signature header value: one signature per key,
// in order, separated by spaces.
func (s *Signer) Sign(msgID string, ts time.Time, body []byte) (string, error) {
	if s.err != nil {
		return "", s.err
	}
	var b strings.Builder
	var c []byte
	for i := range s.hmac {
		if i > 0 {
			b.WriteByte(' ')
		}
		if k := s.ed[i]; k != nil {
			if c == nil {
				c = content(msgID, ts, body)
			}
			b.WriteString("v1a,")
			b.WriteString(base64.StdEncoding.EncodeToString(ed25519.Sign(k, c)))
			continue
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac(s.hmac[i], msgID, ts, body)))
	}
	return b.String(), nil
}

// Verify checks a received request: its timestamp is within tolerance of
// now (DefaultTolerance when zero) and one of the webhook-signature entries
// is body's signature under key: a "v1" entry for a "whsec_" secret, a
// "v1a" entry for a "whpk_" ed25519 public key. Entries of other versions
// are skipped. It returns nil, or one of the errors above (wrapped) saying
// which check failed.
func Verify(key string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
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
	if strings.HasPrefix(key, PublicKeyPrefix) {
		return verifyV1a(key, id, ts, body, sigs)
	}
	if IsPrivateKey(key) {
		return errors.New("signature: verify with the webhook's public key (whpk_...), not a private key")
	}
	k, err := secretKey(key)
	if err != nil {
		return err
	}
	want := mac(k, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := sigEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatch
}

// sigEncoding reads the base64 of a received signature strictly: an
// encoding whose unused trailing bits are set is not the one Sign writes,
// and would let one signature be spelled several ways.
var sigEncoding = base64.StdEncoding.Strict()

// verifyV1a finds a v1a entry of sigs that is the ed25519 signature of
// the content under the public key pk.
func verifyV1a(pk, id string, ts time.Time, body []byte, sigs string) error {
	k, err := publicKey(pk)
	if err != nil {
		return err
	}
	c := content(id, ts, body)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1a" {
			continue
		}
		got, err := sigEncoding.DecodeString(b64)
		if err == nil && len(got) == ed25519.SignatureSize && ed25519.Verify(k, c, got) {
			return nil
		}
	}
	return ErrNoMatch
}
