package sqlstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/signature"
)

// An ed25519 webhook's private keys are sealed at rest like secrets: the
// raw tables hold neither a key nor its base64, and the store opens them
// again, with the algorithm, after a restart.
func TestEd25519KeysSealedAtRest(t *testing.T) {
	t.Parallel()
	for name, target := range sealTargets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := target(t)
			ctx := context.Background()
			db := openWith(t, tg.dsn, storekit.Keys)
			setup(t, db)
			alg := herald.SigningEd25519
			_, err := db.UpdateWebhook(ctx, "acme", "live", "wh", herald.WebhookUpdate{Signing: &herald.SigningUpdate{Algorithm: &alg}})
			must(t, err)
			rotated, err := db.RotateWebhookSecret(ctx, "acme", "live", "wh", time.Hour)
			must(t, err)
			keys, err := db.WebhookSecrets(ctx, "acme", "live", "wh")
			must(t, err)
			if len(keys) != 3 || keys[0].Secret != rotated || !signature.IsPrivateKey(keys[1].Secret) {
				t.Fatalf("keys: %d, current is the rotated one: %v", len(keys), keys[0].Secret == rotated)
			}

			stored := rawText(t, tg.raw)
			for _, k := range keys[:2] {
				body := strings.TrimPrefix(k.Secret, "whsk_")
				for _, s := range []string{k.Secret, body[:24], body[40:64]} {
					if strings.Contains(stored, s) {
						t.Errorf("the database holds part of a private key in the clear")
					}
				}
			}
			if strings.Contains(stored, "whsk_") {
				t.Error("the database holds a whsk_ key in the clear")
			}
			if !strings.Contains(stored, "ed25519") {
				t.Error("the algorithm is not stored")
			}

			db.Close()
			db = openWith(t, tg.dsn, storekit.Keys)
			w, err := db.GetWebhook(ctx, "acme", "live", "wh")
			must(t, err)
			again, err := db.WebhookSecrets(ctx, "acme", "live", "wh")
			must(t, err)
			if w.Signing.Algorithm != herald.SigningEd25519 || len(again) != 3 || again[0].Secret != rotated || again[1].Secret != keys[1].Secret {
				t.Fatalf("after reopening: %q, %d keys", w.Signing.Algorithm, len(again))
			}
		})
	}
}
