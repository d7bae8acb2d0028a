package signature

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Asymmetric signing, Standard Webhooks "v1a": the same signed content as
// v1, signed with ed25519. Herald keeps the private key; receivers hold
// only the public key, which cannot forge a request.
//
// Keys are written as Standard Webhooks names them:
//
//	whsk_<base64 of the 64-byte private key>  (seed then public key, as
//	                                           Go's ed25519.PrivateKey and
//	                                           libsodium's secret key)
//	whpk_<base64 of the 32-byte public key>
//
// and a signature is "v1a,<base64 of the 64-byte ed25519 signature>".
const (
	PublicKeyPrefix  = "whpk_"
	PrivateKeyPrefix = "whsk_"
)

// NewKeyPair makes an ed25519 key pair: the private key (whsk_...) that
// signs and the public key (whpk_...) receivers verify with.
func NewKeyPair() (private, public string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("signature: crypto/rand failed: " + err.Error())
	}
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(priv),
		PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// IsPrivateKey reports whether key is an ed25519 private key (whsk_...),
// as opposed to a shared whsec_ secret.
func IsPrivateKey(key string) bool { return strings.HasPrefix(key, PrivateKeyPrefix) }

// PublicKey returns the whpk_ public key of a whsk_ private key.
func PublicKey(private string) (string, error) {
	k, err := privateKey(private)
	if err != nil {
		return "", err
	}
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey)), nil
}

// privateKey decodes a whsk_ key: 64 bytes (seed and public key), or a
// 32-byte seed.
func privateKey(s string) (ed25519.PrivateKey, error) {
	if !IsPrivateKey(s) {
		return nil, errors.New("signature: private key is not whsk_ followed by base64")
	}
	b, err := base64.StdEncoding.DecodeString(s[len(PrivateKeyPrefix):])
	if err != nil {
		return nil, fmt.Errorf("signature: private key is not whsk_ followed by base64: %w", err)
	}
	switch len(b) {
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(b), nil
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	}
	return nil, fmt.Errorf("signature: private key holds %d bytes; an ed25519 key has %d (or a %d-byte seed)", len(b), ed25519.PrivateKeySize, ed25519.SeedSize)
}

// publicKey decodes a whpk_ key.
func publicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, PublicKeyPrefix))
	if err != nil {
		return nil, fmt.Errorf("signature: public key is not whpk_ followed by base64: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("signature: public key holds %d bytes; an ed25519 public key has %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}
