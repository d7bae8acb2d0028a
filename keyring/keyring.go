// Package keyring holds Herald's master keys and everything made from them:
// the AES-256-GCM sealing of secrets at rest and the keys that sign tokens.
//
// A deployment has one or more master keys of 32 random bytes, newest
// first. The newest seals; any of them opens, so a new key can be put in
// front of the old one, every row re-sealed (herald keys rewrap), and the
// old key dropped, all without downtime. Master keys are never used
// directly: each use gets its own key derived with HKDF-SHA256, so a token
// signing key says nothing about the sealing key and the other way round.
//
// Every sealed value names the key that sealed it by a short ID (a keyed
// hash of the key, which reveals nothing about it), and is bound to a
// context string (the table, column and row it belongs to), so a value
// copied into another row does not open there.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a master key in bytes.
const KeySize = 32

// sealedPrefix starts every sealed value: "hk1.<key id>.<base64url nonce+ciphertext>".
const sealedPrefix = "hk1."

// Ring is a set of master keys, newest first. It is safe for concurrent
// use. It prints as [redacted].
type Ring struct {
	keys []*key
}

type key struct {
	id     string
	master []byte
	aead   cipher.AEAD
}

// ErrUnknownKey is wrapped by Open when a value was sealed by a master key
// that is not in the ring.
var ErrUnknownKey = errors.New("sealed with a master key that is not in the key ring")

// Generate returns a new master key: the standard base64 of 32 random bytes,
// the form HERALD_MASTER_KEY and master key files take.
func Generate() string {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		panic("keyring: crypto/rand failed: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Parse returns the ring of the master keys in spec: base64 keys of 32
// bytes each, separated by commas (or white space, as a key file may hold
// them one per line), newest first. The error says which key is wrong and
// how, never what it holds.
func Parse(spec string) (*Ring, error) {
	fields := strings.FieldsFunc(spec, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	})
	if len(fields) == 0 {
		return nil, errors.New("no master key given; make one with `herald keys generate`")
	}
	r := &Ring{}
	seen := map[string]bool{}
	for i, f := range fields {
		b, err := base64.StdEncoding.DecodeString(f)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(f, "="))
		}
		if err != nil {
			return nil, fmt.Errorf("master key %d of %d is not base64; make one with `herald keys generate`", i+1, len(fields))
		}
		if len(b) != KeySize {
			return nil, fmt.Errorf("master key %d of %d is %d bytes, want %d; make one with `herald keys generate`", i+1, len(fields), len(b), KeySize)
		}
		k, err := newKey(b)
		if err != nil {
			return nil, err
		}
		if seen[k.id] {
			return nil, fmt.Errorf("master key %d of %d (%s) is given twice", i+1, len(fields), k.id)
		}
		seen[k.id] = true
		r.keys = append(r.keys, k)
	}
	return r, nil
}

func newKey(master []byte) (*key, error) {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("herald key id v1"))
	id := hex.EncodeToString(m.Sum(nil)[:6])
	sealKey, err := hkdf.Key(sha256.New, master, nil, "herald seal v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	return &key{id: id, master: master, aead: aead}, nil
}

// String returns "[redacted]" so a ring never reaches a log by accident.
func (r *Ring) String() string { return "[redacted]" }

// GoString returns "[redacted]", for %#v.
func (r *Ring) GoString() string { return "[redacted]" }

// ID returns the ID of the newest key, the one that seals.
func (r *Ring) ID() string { return r.keys[0].id }

// IDs returns the IDs of every key, newest first.
func (r *Ring) IDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.id
	}
	return ids
}

// Has reports whether the ring holds the key with this ID.
func (r *Ring) Has(id string) bool { return r.find(id) != nil }

func (r *Ring) find(id string) *key {
	for _, k := range r.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

// Seal encrypts plaintext under the newest key, bound to context (what the
// value is and where it lives, e.g. "webhook_secrets.secret:wh_123"): the
// same context must be given to Open.
func (r *Ring) Seal(plaintext []byte, context string) string {
	k := r.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("keyring: crypto/rand failed: " + err.Error())
	}
	out := k.aead.Seal(nonce, nonce, plaintext, []byte(context))
	return sealedPrefix + k.id + "." + base64.RawURLEncoding.EncodeToString(out)
}

// SealString is Seal for a string.
func (r *Ring) SealString(plaintext, context string) string {
	return r.Seal([]byte(plaintext), context)
}

// Open decrypts a value made by Seal with the same context. It fails,
// without saying anything of the contents, when the value is not sealed,
// was sealed by a key not in the ring (wrapping ErrUnknownKey), or was
// altered or moved to another context.
func (r *Ring) Open(sealed, context string) ([]byte, error) {
	id, body, ok := parseSealed(sealed)
	if !ok {
		return nil, errors.New("value is not sealed")
	}
	k := r.find(id)
	if k == nil {
		return nil, fmt.Errorf("key %s: %w", id, ErrUnknownKey)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, fmt.Errorf("sealed value is malformed")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(context))
	if err != nil {
		return nil, fmt.Errorf("sealed value does not open under key %s: it was altered or belongs elsewhere", id)
	}
	return plain, nil
}

// OpenString is Open for a string.
func (r *Ring) OpenString(sealed, context string) (string, error) {
	b, err := r.Open(sealed, context)
	return string(b), err
}

// IsSealed reports whether s has the form of a sealed value.
func IsSealed(s string) bool {
	_, _, ok := parseSealed(s)
	return ok
}

// SealedBy returns the ID of the key that sealed s, or "" when s is not a
// sealed value.
func SealedBy(s string) string {
	id, _, _ := parseSealed(s)
	return id
}

func parseSealed(s string) (id, body string, ok bool) {
	rest, ok := strings.CutPrefix(s, sealedPrefix)
	if !ok {
		return "", "", false
	}
	id, body, ok = strings.Cut(rest, ".")
	return id, body, ok && len(id) == 12
}

// Derived returns a 32-byte key for purpose (e.g. "token"), derived from the
// newest master key, and that key's ID.
func (r *Ring) Derived(purpose string) (id string, k []byte) {
	return r.keys[0].id, r.keys[0].derive(purpose)
}

// DerivedAll returns the key for purpose derived from every master key, by
// key ID: what verifies values made under an older key.
func (r *Ring) DerivedAll(purpose string) map[string][]byte {
	out := make(map[string][]byte, len(r.keys))
	for _, k := range r.keys {
		out[k.id] = k.derive(purpose)
	}
	return out
}

func (k *key) derive(purpose string) []byte {
	b, err := hkdf.Key(sha256.New, k.master, nil, "herald derive v1:"+purpose, 32)
	if err != nil {
		panic("keyring: hkdf: " + err.Error()) // only for lengths HKDF cannot give
	}
	return b
}
