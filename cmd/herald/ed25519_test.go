package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
)

// verifyV1a checks a request the way a receiver with nothing but Go's
// crypto/ed25519 and the public key from GET .../public-key would: the
// timestamp within five minutes, and one v1a entry of webhook-signature
// the ed25519 signature of "id.timestamp.body". A whsec_ key is checked
// with the public Standard Webhooks library instead (v1), for the grace
// after a switch from hmac-sha256.
func verifyV1a(key string, h http.Header, body []byte) error {
	if !strings.HasPrefix(key, "whpk_") {
		return verifyStandardWebhooks(key, h, body)
	}
	pk, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, "whpk_"))
	if err != nil || len(pk) != ed25519.PublicKeySize {
		return errors.New("bad public key")
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return errors.New("bad timestamp")
	}
	content := []byte(id + "." + ts + "." + string(body))
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		b64, ok := strings.CutPrefix(s, "v1a,")
		if !ok {
			continue
		}
		if sig, err := base64.StdEncoding.DecodeString(b64); err == nil && ed25519.Verify(pk, content, sig) {
			return nil
		}
	}
	return errors.New("no v1a signature verifies")
}

type publicKeys struct {
	PublicKey          string `json:"publicKey"`
	PreviousPublicKeys []struct {
		PublicKey string `json:"publicKey"`
	} `json:"previousPublicKeys"`
}

// A webhook switched to ed25519 signs v1a with a key whose public half the
// API gives out; a receiver verifies with crypto/ed25519 alone. During the
// switch's grace the old HMAC secret still verifies, and during a
// rotation's grace both public keys do; a rotation without grace drops the
// old key at once.
func TestEd25519SignaturesVerifyWithThePublicKey(t *testing.T) {
	p := startHerald(t, nil, sqliteArgs(t)...)
	c := p.client(t)
	recv := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{Host: "127.0.0.1", Strict: true, Verify: verifyV1a, Respond: answer(nil)})
	inst, oldSecret := setupWebhook(t, c, recv.URL+"/hook")
	hook := inst + "/webhooks/wh-patient-sync"
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("receiver: %d requests, %d bad signatures", recv.Count(), recv.SignatureFailures())
		}
	})
	send := func(source string) {
		t.Helper()
		var res struct{ EventID string }
		mustDo(t, c, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": source}, &res)
		recv.WaitDelivered(t, 30*time.Second, res.EventID)
	}

	mustDo(t, c, "PATCH", hook, map[string]any{"signing": map[string]string{"algorithm": "ed25519"}}, nil)
	var k1 publicKeys
	mustDo(t, c, "GET", hook+"/public-key", nil, &k1)
	if !strings.HasPrefix(k1.PublicKey, "whpk_") {
		t.Fatalf("public key %q", k1.PublicKey)
	}
	// A receiver on the new public key, and one still on the old secret.
	for i, key := range []string{k1.PublicKey, oldSecret} {
		recv.SetSecrets(key)
		send("switch-" + strconv.Itoa(i))
	}
	last, ok := recv.Last()
	if !ok {
		t.Fatal("the receiver took no request")
	}
	verifyWithNode(t, k1.PublicKey, last.Header, last.Body)

	var rotated struct {
		PublicKey string `json:"publicKey"`
		Secret    string `json:"secret"`
	}
	mustDo(t, c, "POST", hook+"/secret/rotate", map[string]any{"graceSeconds": 3600}, &rotated)
	if rotated.Secret != "" || !strings.HasPrefix(rotated.PublicKey, "whpk_") || rotated.PublicKey == k1.PublicKey {
		t.Fatalf("rotation answered %+v", rotated)
	}
	var k2 publicKeys
	mustDo(t, c, "GET", hook+"/public-key", nil, &k2)
	if k2.PublicKey != rotated.PublicKey || len(k2.PreviousPublicKeys) != 1 || k2.PreviousPublicKeys[0].PublicKey != k1.PublicKey {
		t.Fatalf("public keys during the grace: %+v", k2)
	}
	for i, key := range []string{k1.PublicKey, k2.PublicKey} {
		recv.SetSecrets(key)
		send("rotate-" + strconv.Itoa(i))
	}

	mustDo(t, c, "POST", hook+"/secret/rotate", map[string]any{"graceSeconds": 0}, &rotated)
	recv.SetSecrets(k2.PublicKey)
	var res struct{ EventID string }
	mustDo(t, c, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "leaked"}, &res)
	waitUntil(t, 30*time.Second, "a request the previous public key cannot verify", func() bool {
		return recv.SignatureFailures() > 0
	})
	if strings.Contains(p.logs.String(), "whsk_") {
		t.Fatal("a log line holds a private key")
	}
}

// nodeVerify is a receiver in Node.js with nothing but its crypto module:
// the public key as a JWK, and crypto.verify over "id.timestamp.body"
// for each v1a entry. (The npm package standardwebhooks, 1.1.1, verifies
// v1 only, so it cannot be the receiver here.) It prints "verified".
const nodeVerify = `
const crypto = require("crypto");
const key = crypto.createPublicKey({format: "jwk", key: {kty: "OKP", crv: "Ed25519",
  x: Buffer.from(process.env.PUBLIC_KEY.replace(/^whpk_/, ""), "base64").toString("base64url")}});
const content = Buffer.concat([Buffer.from(process.env.WH_ID + "." + process.env.WH_TS + "."), Buffer.from(process.env.BODY, "base64")]);
const ok = process.env.WH_SIG.split(" ").some(s => s.startsWith("v1a,") &&
  crypto.verify(null, content, key, Buffer.from(s.slice(4), "base64")));
console.log(ok ? "verified" : "refused");
`

// verifyWithNode checks one request with nodeVerify, and that the same
// request with its body changed is refused, in a subtest that is skipped,
// visibly (the CI's skip summary names it), when node is not on the PATH.
func verifyWithNode(t *testing.T, publicKey string, h http.Header, body []byte) {
	t.Helper()
	t.Run("node", func(t *testing.T) { nodeVerifies(t, publicKey, h, body) })
}

func nodeVerifies(t *testing.T, publicKey string, h http.Header, body []byte) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the Node.js receiver was not tried")
	}
	run := func(body []byte) string {
		cmd := exec.Command(node, "-e", nodeVerify)
		cmd.Env = append(os.Environ(), "PUBLIC_KEY="+publicKey, "WH_ID="+h.Get("webhook-id"), "WH_TS="+h.Get("webhook-timestamp"),
			"WH_SIG="+h.Get("webhook-signature"), "BODY="+base64.StdEncoding.EncodeToString(body))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run(body); got != "verified" {
		t.Fatalf("Node.js's crypto.verify with the public key: %s", got)
	}
	if got := run(append([]byte(" "), body...)); got != "refused" {
		t.Fatalf("Node.js verified a changed body: %s", got)
	}
}
