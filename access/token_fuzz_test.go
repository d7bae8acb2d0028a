package access

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/keyring"
)

// FuzzTokenParse: a bearer token that parses is one this deployment signed
// (its MAC is the one its key would make) and its claims are complete and
// unexpired; anything else is a 401 with a message. A token issued for any
// client reads back with the claims it was issued with, under the newest
// master key or an older one still in the ring; with any one bit flipped,
// or once expired, it is refused.
func FuzzTokenParse(f *testing.F) {
	newKey := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("n", keyring.KeySize)))
	oldKey := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("o", keyring.KeySize)))
	ring, err := keyring.Parse(newKey + "," + oldKey)
	if err != nil {
		f.Fatal(err)
	}
	oldRing, err := keyring.Parse(oldKey)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tk := newTokens(ring, clock, time.Hour)
	oldTk := newTokens(oldRing, clock, time.Hour)

	admin := &herald.APIClient{ID: "cli_1", Name: "admin", Role: herald.RolePlatformAdmin}
	valid, _, err := tk.issue(admin, 1, now)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{valid, valid[:len(valid)-1], valid + "x", strings.Replace(valid, tokenPrefix, "v2.", 1),
		"v1.abc.def", "v3.", "v3..", "v3.kid.payload.sig", "", "Bearer " + valid, "v3." + ring.ID() + ".e30.sig", strings.Repeat(".", 10)} {
		f.Add(s, "ehr-sync", "acme", uint8(3), uint16(1), int64(now.UnixMilli()), uint16(0), uint8(0))
	}
	f.Add("", "", "", uint8(0), uint16(0), int64(-1), uint16(77), uint8(7))
	f.Add("", "caf\xc3\xa9\xff", "t\"\\", uint8(4), uint16(999), int64(1<<62), uint16(300), uint8(2))
	f.Fuzz(func(t *testing.T, raw, name, tenant string, role uint8, gen uint16, issuedMs int64, flip uint16, bit uint8) {
		c, err := tk.parse(raw)
		if err != nil {
			wantUnauthorized(t, err, raw)
		} else {
			msg, sig, _ := cutLast(raw, ".")
			kid, _, _ := strings.Cut(strings.TrimPrefix(msg, tokenPrefix), ".")
			if sign(tk.verify[kid], msg) != sig || c.ID == "" || c.ClientID == "" || c.Client == "" || !c.Role.Valid() || c.Gen < 1 ||
				!now.Before(time.Unix(c.Expires, 0)) {
				t.Fatalf("parse(%q) accepted %+v", raw, c)
			}
		}

		// Issue and read back, under the newest key and under the old one.
		cl := &herald.APIClient{ID: "cli_" + strings.ToValidUTF8(name, "_"), Name: strings.ToValidUTF8(name, "_"),
			Tenant: strings.ToValidUTF8(tenant, "_"), Role: herald.Roles[int(role)%len(herald.Roles)]}
		if cl.Name == "" {
			cl.Name = "admin"
		}
		g := int(gen)%1000 + 1
		issued := time.UnixMilli(issuedMs)
		for _, by := range []*tokens{tk, oldTk} {
			tok, want, err := by.issue(cl, g, issued)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tk.parse(tok)
			if err != nil {
				t.Fatalf("parse of a token just issued for %+v: %v", cl, err)
			}
			if *got != *want || got.Client != cl.Name || got.Tenant != cl.Tenant || got.Role != cl.Role || got.Gen != g || got.Issued != issuedMs {
				t.Fatalf("token issued with %+v reads back as %+v", want, got)
			}
			b := []byte(tok)
			b[int(flip)%len(b)] ^= 1 << (bit % 8)
			if _, err := tk.parse(string(b)); err == nil {
				t.Fatalf("parse accepted %q, token %q with one bit flipped", b, tok)
			} else {
				wantUnauthorized(t, err, string(b))
			}
			later := newTokens(ring, func() time.Time { return now.Add(time.Hour) }, time.Hour)
			if _, err := later.parse(tok); err == nil {
				t.Fatalf("parse accepted %q an hour after it was issued for an hour", tok)
			}
		}
	})
}

// wantUnauthorized fails unless err is an EUNAUTHORIZED *herald.Error (a
// 401) saying something.
func wantUnauthorized(t *testing.T, err error, token string) {
	t.Helper()
	var he *herald.Error
	if !errors.As(err, &he) || he.Code != herald.EUNAUTHORIZED || he.Message == "" {
		t.Fatalf("parse(%q) refused with %#v, want an EUNAUTHORIZED herald error with a message", token, err)
	}
}
