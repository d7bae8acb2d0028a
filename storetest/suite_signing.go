package storetest

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/signature"
)

func init() {
	// A webhook switched to ed25519 gets a key pair; the HMAC secret keeps
	// signing for the default grace; a rotation makes a new pair; claimed
	// jobs carry a signer that signs with every key in force.
	register("SigningAlgorithm", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}}, hook{name: "other", triggers: []herald.Trigger{entity("PATIENT")}})
		w, err := e.S.GetWebhook(e.Ctx, "acme", "live", "wh")
		e.must(err)
		if w.Signing.Algorithm != herald.SigningHMACSHA256 {
			e.Fatalf("a new webhook signs with %q, want %q", w.Signing.Algorithm, herald.SigningHMACSHA256)
		}
		first, err := e.S.WebhookSecrets(e.Ctx, "acme", "live", "wh")
		e.must(err)

		_, err = e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{Signing: &herald.SigningUpdate{Algorithm: ptr("rsa")}})
		e.wantCode(err, herald.EINVALID, "signing.algorithm")
		if he, ok := errors.AsType[*herald.Error](err); !ok || he.Field != "signing.algorithm" {
			e.Errorf("error %v does not name the field signing.algorithm", err)
		}

		e.Clock.Advance(time.Minute)
		w, err = e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{Signing: &herald.SigningUpdate{Algorithm: ptr(herald.SigningEd25519)}})
		e.must(err)
		if w.Signing.Algorithm != herald.SigningEd25519 {
			e.Fatalf("after the switch: %q", w.Signing.Algorithm)
		}
		if w, _ = e.S.GetWebhook(e.Ctx, "acme", "live", "wh"); w.Signing.Algorithm != herald.SigningEd25519 {
			e.Fatalf("read back: %q", w.Signing.Algorithm)
		}
		got, err := e.S.WebhookSecrets(e.Ctx, "acme", "live", "wh")
		e.must(err)
		if len(got) != 2 || !signature.IsPrivateKey(got[0].Secret) || got[0].ExpiresAt != nil ||
			got[1].Secret != first[0].Secret || got[1].ExpiresAt == nil || !got[1].ExpiresAt.Equal(e.Clock.Now().Add(herald.DefaultSigningGrace)) {
			kinds := make([]string, len(got))
			for i, k := range got {
				kinds[i] = fmt.Sprintf("%.6s expiring %v", k.Secret, k.ExpiresAt)
			}
			e.Fatalf("keys after the switch: %v; want a whsk_ key, then the old secret expiring in a day", kinds)
		}
		// The same algorithm again changes no key.
		_, err = e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{Signing: &herald.SigningUpdate{Algorithm: ptr(herald.SigningEd25519)}})
		e.must(err)
		if again, _ := e.S.WebhookSecrets(e.Ctx, "acme", "live", "wh"); len(again) != 2 || again[0].Secret != got[0].Secret {
			e.Fatalf("setting the same algorithm made a new key")
		}

		// Rotation makes a new key pair; the old pair and the HMAC secret
		// sign during the grace.
		k2, err := e.S.RotateWebhookSecret(e.Ctx, "acme", "live", "wh", time.Hour)
		e.must(err)
		if !signature.IsPrivateKey(k2) || k2 == got[0].Secret {
			e.Fatalf("rotation of an ed25519 webhook did not make a new private key")
		}
		keys, _ := e.S.WebhookSecrets(e.Ctx, "acme", "live", "wh")
		if want := []string{k2, got[0].Secret, first[0].Secret}; !slices.Equal(herald.SigningKeys(keys), want) {
			e.Fatalf("keys after rotation: %d keys, want the new pair, the old pair, the secret", len(keys))
		}

		// Claimed jobs sign with all three; one signer per webhook.
		e.create(event("acme", "live", "PATIENT_CREATED"), event("acme", "live", "PATIENT_CREATED"))
		jobs := e.claim("n1", 10, 10)
		var mine []int
		for i, j := range jobs {
			if j.Webhook.Name == "wh" {
				mine = append(mine, i)
			}
			if j.Signer == nil {
				e.Fatalf("job %d has no signer", i)
			}
		}
		if len(mine) != 2 || jobs[mine[0]].Signer != jobs[mine[1]].Signer {
			e.Fatalf("the two jobs of wh do not share one signer")
		}
		j := jobs[mine[0]]
		now := e.Clock.Now()
		sig, err := j.Signer.Sign(j.Event.ID, now, []byte(`{}`))
		e.must(err)
		h := http.Header{}
		h.Set(signature.HeaderID, j.Event.ID)
		h.Set(signature.HeaderTimestamp, fmt.Sprint(now.Unix()))
		h.Set(signature.HeaderSignature, sig)
		for _, k := range []string{k2, got[0].Secret} {
			pub, err := signature.PublicKey(k)
			e.must(err)
			e.must(signature.Verify(pub, h, []byte(`{}`), now, 0))
		}
		e.must(signature.Verify(first[0].Secret, h, []byte(`{}`), now, 0))
		if n := strings.Count(sig, "v1a,"); n != 2 {
			e.Errorf("signature header has %d v1a signatures, want 2", n)
		}

		// Back to HMAC: a new secret; the ed25519 keys keep signing.
		w, err = e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{Signing: &herald.SigningUpdate{Algorithm: ptr("")}})
		e.must(err)
		keys, _ = e.S.WebhookSecrets(e.Ctx, "acme", "live", "wh")
		if w.Signing.Algorithm != herald.SigningHMACSHA256 || signature.IsPrivateKey(keys[0].Secret) || !strings.HasPrefix(keys[0].Secret, "whsec_") || len(keys) != 4 {
			e.Fatalf("back to the default: %q, %d keys", w.Signing.Algorithm, len(keys))
		}
		// The other webhook was never touched.
		if o, _ := e.S.WebhookSecrets(e.Ctx, "acme", "live", "other"); len(o) != 1 || signature.IsPrivateKey(o[0].Secret) {
			e.Fatalf("the other webhook's keys changed")
		}
	})
}
