package herald

import (
	"strings"
	"time"
)

// Signing algorithms of a webhook: how Herald signs its requests
// (package signature does the signing).
const (
	// SigningHMACSHA256 signs with a shared "whsec_" secret: Standard
	// Webhooks "v1" signatures. The default, and what every webhook made
	// before ed25519 signs with.
	SigningHMACSHA256 = "hmac-sha256"
	// SigningEd25519 signs with an ed25519 private key that never leaves
	// Herald: Standard Webhooks "v1a" signatures, which receivers verify
	// with the public key ("whpk_...") alone, so no receiver holds
	// anything that could forge Herald's requests.
	SigningEd25519 = "ed25519"
)

// SigningAlgorithms lists the signing algorithms, the default first.
var SigningAlgorithms = []string{SigningHMACSHA256, SigningEd25519}

// DefaultSigningGrace is how long the old key keeps signing when a
// webhook's signing algorithm changes, as for a rotation without a
// graceSeconds: receivers have a day to switch.
const DefaultSigningGrace = 24 * time.Hour

// SigningConfig says how a webhook signs its requests. Its keys are not
// part of it: they live with the webhook's secrets (WebhookSecrets,
// RotateWebhookSecret), sealed at rest.
type SigningConfig struct {
	Algorithm string `json:"algorithm"`
}

// SigningUpdate is a PATCH of a SigningConfig: nil keeps the algorithm.
// A new algorithm makes a new key of its kind; the old key keeps signing
// for DefaultSigningGrace.
type SigningUpdate struct {
	Algorithm *string `json:"algorithm"`
}

// AlgorithmOrDefault returns the signing algorithm in force: c.Algorithm, or the
// default for "" (a webhook value built in code, or a PATCH that sends "").
func (c SigningConfig) AlgorithmOrDefault() string {
	if c.Algorithm == "" {
		return SigningHMACSHA256
	}
	return c.Algorithm
}

// validate returns an EINVALID error naming signing.algorithm unless it is
// one of SigningAlgorithms or "" (the default).
func (c SigningConfig) validate() error {
	for _, a := range append([]string{""}, SigningAlgorithms...) {
		if c.Algorithm == a {
			return nil
		}
	}
	return FieldErrorf("signing.algorithm", "signing.algorithm %q is not known; use %q (Standard Webhooks v1, a shared secret) or %q (v1a, receivers verify with a public key).",
		c.Algorithm, SigningHMACSHA256, SigningEd25519)
}

// apply merges u into c.
func (u *SigningUpdate) apply(c *SigningConfig) {
	if u != nil && u.Algorithm != nil {
		c.Algorithm = strings.TrimSpace(*u.Algorithm)
	}
}
