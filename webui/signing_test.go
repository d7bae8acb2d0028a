package webui_test

import (
	"context"
	"html"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/signature"
)

// The page of an ed25519 webhook shows the algorithm and the public key,
// to a viewer as to an admin, and never the private key: not on the page,
// not on reveal, not after a rotation.
func TestEd25519WebhookPageShowsThePublicKey(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	path := "/ui/t/acme/i/sandbox/webhooks/wh"
	b := e.browser()
	b.signIn("admin")
	if _, _, page := b.get(path); !strings.Contains(page, "Signing secret") || strings.Contains(page, "Signing: ed25519") {
		t.Fatalf("an HMAC webhook's page:\n%s", page)
	}

	alg := herald.SigningEd25519
	if _, err := e.store.UpdateWebhook(ctx, "acme", "sandbox", "wh", herald.WebhookUpdate{Signing: &herald.SigningUpdate{Algorithm: &alg}}); err != nil {
		t.Fatal(err)
	}
	keys, err := e.store.WebhookSecrets(ctx, "acme", "sandbox", "wh")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signature.PublicKey(keys[0].Secret)
	if err != nil {
		t.Fatal(err)
	}
	private := strings.TrimPrefix(keys[0].Secret, "whsk_")
	for _, who := range []string{"viewer", "admin"} {
		b := e.browser()
		b.signIn(who)
		status, _, page := b.get(path)
		page = html.UnescapeString(page)
		if status != 200 || !strings.Contains(page, "Signing: ed25519") || !strings.Contains(page, pub) || strings.Contains(page, private[:20]) {
			t.Fatalf("%s's page of an ed25519 webhook (%d):\n%s", who, status, page)
		}
		if who == "admin" && !strings.Contains(page, "A previous key keeps signing until") {
			t.Fatalf("the admin's page does not say the HMAC secret still signs:\n%s", page)
		}
	}

	// Reveal and rotate show no private key; the page shows the new public key.
	_, _, page := b.post(path+"/secret", url.Values{"csrf": {b.csrf(path)}})
	if strings.Contains(page, "whsk_") || strings.Contains(page, private[:20]) {
		t.Fatalf("reveal on an ed25519 webhook shows the private key:\n%s", page)
	}
	_, _, page = b.post(path+"/secret/rotate", url.Values{"csrf": {b.csrf(path)}, "grace": {"3600"}})
	keys, _ = e.store.WebhookSecrets(ctx, "acme", "sandbox", "wh")
	newPub, _ := signature.PublicKey(keys[0].Secret)
	page = html.UnescapeString(page)
	if newPub == pub || !strings.Contains(page, newPub) || strings.Contains(page, "whsk_") || !strings.Contains(page, "Key pair rotated") {
		t.Fatalf("after the rotation:\n%s", page)
	}
}
