package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/signature"
)

type publicKeyAnswer struct {
	PublicKey          string
	PreviousPublicKeys []struct {
		PublicKey string
		ExpiresAt *time.Time
	}
}

// An ed25519 webhook: switched by PATCH, its public key readable by every
// role that reads the webhook, its private key in no answer, rotated with
// a grace during which requests carry both v1a signatures.
func TestEd25519Webhook(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	wh := inst + "/webhooks/wh-patient-sync"
	receiver := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{Respond: heraldtest.Answer{Body: "ok"}.Respond})
	e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]any{"url": receiver.URL + "/hook"}})

	// A bad algorithm is refused, naming the field.
	if ae := e.must(400, req{method: "PATCH", path: wh, token: e.admin, body: map[string]any{"signing": map[string]string{"algorithm": "rsa"}}}).apiError(t); ae.Field != "signing.algorithm" {
		t.Fatalf("bad algorithm: %+v", ae)
	}
	// An HMAC webhook has no public key.
	var got struct{ Signing herald.SigningConfig }
	e.must(200, req{method: "GET", path: wh, token: e.admin}).json(t, &got)
	if got.Signing.Algorithm != "hmac-sha256" {
		t.Fatalf("a new webhook's signing: %+v", got.Signing)
	}
	if ae := e.must(409, req{method: "GET", path: wh + "/public-key", token: e.admin}).apiError(t); !strings.Contains(ae.Message, "hmac-sha256") {
		t.Fatalf("public key of an HMAC webhook: %+v", ae)
	}
	var sec struct{ Secret string }
	e.must(200, req{method: "GET", path: wh + "/secret", token: e.admin}).json(t, &sec)

	// Switch to ed25519.
	resp := e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]any{"signing": map[string]string{"algorithm": "ed25519"}}})
	resp.json(t, &got)
	if got.Signing.Algorithm != "ed25519" || strings.Contains(resp.String(), "whsk_") {
		t.Fatalf("after the switch: %s", resp)
	}
	// Every role that reads the webhook reads its public key; the secret
	// route refuses to show the private key.
	viewer := e.mustClient("acme", "acme-viewer", herald.RoleViewer)
	var pk publicKeyAnswer
	resp = e.must(200, req{method: "GET", path: wh + "/public-key", token: viewer})
	resp.json(t, &pk)
	if !strings.HasPrefix(pk.PublicKey, "whpk_") || len(pk.PreviousPublicKeys) != 0 || strings.Contains(resp.String(), "whsec_") {
		t.Fatalf("public key: %s", resp)
	}
	if ae := e.must(409, req{method: "GET", path: wh + "/secret", token: e.admin}).apiError(t); !strings.Contains(ae.Message, "public-key") {
		t.Fatalf("secret of an ed25519 webhook: %+v", ae)
	}
	e.must(403, req{method: "GET", path: wh + "/public-key", token: e.mustClient("acme", "acme-producer", herald.RoleProducer)})

	// A test request carries v1a, and during the switch's grace the old v1.
	e.must(200, req{method: "POST", path: wh + "/test", token: e.admin})
	r, ok := receiver.Last()
	if !ok {
		t.Fatal("the receiver got no request")
	}
	if err := signature.Verify(pk.PublicKey, r.Header, r.Body, time.Now(), 0); err != nil {
		t.Fatalf("v1a with the public key: %v (%s)", err, r.Header.Get("webhook-signature"))
	}
	if err := signature.Verify(sec.Secret, r.Header, r.Body, time.Now(), 0); err != nil {
		t.Fatalf("v1 with the old secret during the grace: %v", err)
	}

	// Rotation answers with the new public key only.
	resp = e.must(200, req{method: "POST", path: wh + "/secret/rotate", token: e.admin, body: map[string]int{"graceSeconds": 3600}})
	var rotated struct{ PublicKey, Secret string }
	resp.json(t, &rotated)
	if !strings.HasPrefix(rotated.PublicKey, "whpk_") || rotated.PublicKey == pk.PublicKey || rotated.Secret != "" || strings.Contains(resp.String(), "whsk_") {
		t.Fatalf("rotation of an ed25519 webhook answered %s", resp)
	}
	var after publicKeyAnswer
	e.must(200, req{method: "GET", path: wh + "/public-key", token: e.admin}).json(t, &after)
	if after.PublicKey != rotated.PublicKey || len(after.PreviousPublicKeys) != 1 || after.PreviousPublicKeys[0].PublicKey != pk.PublicKey ||
		after.PreviousPublicKeys[0].ExpiresAt == nil {
		t.Fatalf("public keys during the grace: %+v", after)
	}
	e.must(200, req{method: "POST", path: wh + "/test", token: e.admin})
	r, _ = receiver.Last()
	for _, k := range []string{rotated.PublicKey, pk.PublicKey} {
		if err := signature.Verify(k, r.Header, r.Body, time.Now(), 0); err != nil {
			t.Errorf("during the rotation's grace, %s: %v", k, err)
		}
	}

	// The audit trail records the switch and holds no private key.
	audit := e.must(200, req{method: "GET", path: "/v1/tenants/acme/audit", token: e.admin})
	if strings.Contains(audit.String(), "whsk_") || !strings.Contains(audit.String(), `"ed25519"`) {
		t.Fatalf("audit trail: %s", audit)
	}
}
