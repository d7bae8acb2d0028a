package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Secrets Herald makes for API clients are "hsk_" and the unpadded
// base64url of 40 random bytes. The first 8 bytes are the secret's lookup
// id, kept in the clear beside its hash: the token exchange finds by it the
// one client, among those sharing a name across tenants, whose hash to
// check, so every exchange costs one hash whatever it finds. The other 32
// bytes are the secret proper. Secrets of other shapes (the admin's own
// HERALD_ADMIN_SECRET, the 32-byte secrets of earlier versions) have no id.
const (
	secretPrefix = "hsk_"
	secretIDSize = 8
	secretSize   = 32
)

// newSecret returns a new API client secret and its lookup id.
func newSecret() (secret, id string) {
	b := make([]byte, secretIDSize+secretSize)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program rather than return an error
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(b[:secretIDSize])
}

// secretID returns the lookup id of a secret Herald made, and "" for any
// other secret.
func secretID(secret string) string {
	body, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok || len(body) != base64.RawURLEncoding.EncodedLen(secretIDSize+secretSize) {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return ""
	}
	return hex.EncodeToString(b[:secretIDSize])
}

// Secrets are stored as argon2id hashes in the PHC string format,
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (unpadded standard
// base64), so each hash carries the parameters it was made with and the
// parameters of new hashes can change without touching the stored ones.
//
// The parameters are OWASP's first recommendation for argon2id: 19 MiB of
// memory, 2 passes, 1 lane. One hash takes about 35 ms of one CPU on the
// 2-vCPU machine of docs/performance.md (BenchmarkHashSecret).
type hashParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	keyLen  uint32
}

var defaultParams = hashParams{memory: 19 * 1024, time: 2, threads: 1, keyLen: 32}

const saltSize = 16

// Bounds on the parameters a stored hash may ask for; a hash beyond them is
// refused rather than computed, so a row altered in the database cannot make
// a node allocate gigabytes.
const (
	maxMemory  = 256 * 1024
	maxTime    = 16
	maxThreads = 16
)

// hashSlots bounds the argon2id hashes this process computes at once, each
// holding its memory (19 MiB) while it runs: with one slot per CPU the CPUs
// stay busy and the memory stays bounded however many token requests come
// together. Callers wait for a slot as long as their context lets them.
// The last hash of a flurry returns the memory to the system at once
// (debug.FreeOSMemory): with GOGC at 400 the garbage collector would
// otherwise keep up to a slot's worth of it per CPU for long after, about
// half of an idle node's resident memory. A forced collection costs a few
// milliseconds beside the hash's tens.
var hashSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

// hashes counts argon2id computations, so tests can check that the token
// exchange does the same work whatever it finds.
var hashes atomic.Int64

func argon2id(ctx context.Context, secret string, salt []byte, p hashParams) ([]byte, error) {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	hashes.Add(1)
	key := argon2.IDKey([]byte(secret), salt, p.time, p.memory, p.threads, p.keyLen)
	<-hashSlots
	if len(hashSlots) == 0 {
		debug.FreeOSMemory()
	}
	return key, nil
}

func formatPHC(p hashParams, salt, key []byte) string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		enc.EncodeToString(salt), enc.EncodeToString(key))
}

// parsePHC reads an argon2id PHC string; ok is false for anything else,
// including parameters beyond the bounds.
func parsePHC(s string) (p hashParams, salt, key []byte, ok bool) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, false
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &threads); n != 3 || err != nil {
		return p, nil, nil, false
	}
	if p.memory < 8 || p.memory > maxMemory || p.time < 1 || p.time > maxTime || threads < 1 || threads > maxThreads {
		return p, nil, nil, false
	}
	p.threads = uint8(threads)
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	key, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, false
	}
	p.keyLen = uint32(len(key))
	return p, salt, key, true
}

// hashSecret returns a new argon2id hash of secret, with a fresh random
// salt, in PHC form. It fails only when ctx ends while it waits for a hash
// slot.
func hashSecret(ctx context.Context, secret string) (string, error) {
	salt := make([]byte, saltSize)
	_, _ = rand.Read(salt)
	key, err := argon2id(ctx, secret, salt, defaultParams)
	if err != nil {
		return "", err
	}
	return formatPHC(defaultParams, salt, key), nil
}

// decoyHash stands in for a hash that does not exist: checking a secret
// against it costs what checking against a stored hash costs, and it
// matches nothing (its key is random, not the hash of anything).
var decoyHash = func() string {
	b := make([]byte, saltSize+int(defaultParams.keyLen))
	_, _ = rand.Read(b)
	return formatPHC(defaultParams, b[:saltSize], b[saltSize:])
}()

// isLegacyHash reports whether hash is the hex SHA-256 that versions before
// argon2id stored.
func isLegacyHash(hash string) bool {
	if len(hash) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(hash)
	return err == nil
}

// checkSecret reports, in constant time, whether secret matches hash: an
// argon2id PHC string, or the hex SHA-256 of earlier versions, in which case
// legacy is true so the caller can store a new hash. Every call costs one
// argon2id computation, whatever kind of hash it checks (a legacy hash, one
// it cannot read), so how long it takes says nothing about what was found.
// err is set only when ctx ended while waiting for a hash slot.
func checkSecret(ctx context.Context, secret, hash string) (match, legacy bool, err error) {
	if isLegacyHash(hash) {
		sum := sha256.Sum256([]byte(secret))
		want, _ := hex.DecodeString(hash)
		match = subtle.ConstantTimeCompare(sum[:], want) == 1
		// The argon2id work a current hash would cost.
		if _, _, err := checkSecret(ctx, secret, decoyHash); err != nil {
			return false, true, err
		}
		return match, true, nil
	}
	p, salt, key, ok := parsePHC(hash)
	if !ok {
		p, salt, key, _ = parsePHC(decoyHash)
	}
	got, err := argon2id(ctx, secret, salt, p)
	if err != nil {
		return false, false, err
	}
	return ok && subtle.ConstantTimeCompare(got, key) == 1, false, nil
}
