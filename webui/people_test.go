package webui_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
	"github.com/heraldhooks/herald/webui"
)

var (
	setupLinkRE = regexp.MustCompile(`id="setup-link" class="mono" value="[^"]*(/ui/setup/[^"]+)"`)
	secretRE    = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	recoveryRE  = regexp.MustCompile(`<li>([a-z2-7]{5}-[a-z2-7]{5}-[a-z2-7]{5}-[a-z2-7]{5})</li>`)
)

const personPassword = "a long enough passphrase"

// invite has admin (an API client signed in) invite email with role in
// acme through the people page, and returns the setup link's path.
func invite(t *testing.T, admin *browser, email string, role herald.Role) string {
	t.Helper()
	status, _, body := admin.post("/ui/t/acme/users", url.Values{"csrf": {admin.csrf("/ui/t/acme/users")}, "email": {email},
		"displayName": {"Person " + email}, "role": {string(role)}})
	m := setupLinkRE.FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("invite: %d\n%s", status, body)
	}
	return m[1]
}

// setUp takes a person through their setup link and returns their TOTP
// secret and recovery codes.
func setUp(t *testing.T, b *browser, link string) (string, []string) {
	t.Helper()
	status, _, body := b.post(link+"/password", url.Values{"csrf": {b.csrf(link)}, "password": {personPassword}, "confirm": {personPassword}})
	m := secretRE.FindStringSubmatch(body)
	if status != 200 || m == nil || !strings.Contains(body, "<svg") || !strings.Contains(body, "otpauth://totp/Herald:") {
		t.Fatalf("set password: %d\n%s", status, body)
	}
	code, _ := access.TOTPCode(m[1], time.Now())
	status, _, body = b.post(link+"/totp", url.Values{"csrf": {b.csrf(link)}, "code": {code}})
	codes := recoveryRE.FindAllStringSubmatch(body, -1)
	if status != 200 || len(codes) != 10 {
		t.Fatalf("confirm TOTP: %d, %d codes\n%s", status, len(codes), body)
	}
	var out []string
	for _, c := range codes {
		out = append(out, c[1])
	}
	return m[1], out
}

// signInPerson signs in with email, password and a code.
func (b *browser) signInPerson(email, code string) (int, string) {
	b.t.Helper()
	status, _, body := b.post("/ui/signin", url.Values{"csrf": {b.csrf("/ui/signin")}, "email": {email}, "password": {personPassword},
		"code": {code}, "next": {"/ui/"}})
	return status, body
}

func TestPeopleSignIn(t *testing.T) {
	e := mustEnv(t, func(c *webui.Config) { c.APIClientSignIn = false })
	admin := e.browser()
	// API clients cannot sign in: the form is not there, and posting it
	// signs no one in.
	if _, _, body := admin.get("/ui/signin"); strings.Contains(body, `id="apiClient"`) || !strings.Contains(body, `id="email"`) {
		t.Fatalf("sign-in page with API client sign-in off:\n%s", body)
	}
	status, h, _ := admin.post("/ui/signin", url.Values{"csrf": {admin.csrf("/ui/signin")}, "apiClient": {"admin"}, "secret": {adminSecret}})
	if status == http.StatusSeeOther || h.Get("Location") != "" {
		t.Fatalf("an API client signed in with API client sign-in off: %d %s", status, h.Get("Location"))
	}

	// An admin person, made as herald users create would, invites Sam.
	ctx := context.Background()
	inv, err := e.gate.InviteUser(ctx, "acme", "boss@example.com", "Boss", herald.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	bossSecret, _ := setUp(t, admin, "/ui/setup/"+inv.Token)
	code := nextCode(t, bossSecret)
	if status, body := admin.signInPerson("boss@example.com", code); status != http.StatusSeeOther {
		t.Fatalf("boss signs in: %d\n%s", status, body)
	}
	link := invite(t, admin, "Sam@Example.com", herald.RoleViewer)
	sam := e.browser()
	// A short password is refused, saying so.
	_, _, body := sam.post(link+"/password", url.Values{"csrf": {sam.csrf(link)}, "password": {"short"}, "confirm": {"short"}})
	if !strings.Contains(html.UnescapeString(body), "The password is 5 characters long; it must have at least 12.") {
		t.Fatalf("short password:\n%s", body)
	}
	samSecret, codes := setUp(t, sam, link)
	// The link is used up.
	if status, _, body := sam.get(link); status != http.StatusUnauthorized || !strings.Contains(body, "was used already") {
		t.Fatalf("used setup link: %d\n%s", status, body)
	}
	// Sam signs in with a recovery code, on two browsers.
	if status, body := sam.signInPerson("sam@example.com", codes[0]); status != http.StatusSeeOther {
		t.Fatalf("sam signs in: %d\n%s", status, body)
	}
	other := e.browser()
	if status, body := other.signInPerson("sam@example.com", nextCode(t, samSecret)); status != http.StatusSeeOther {
		t.Fatalf("sam signs in on another browser: %d\n%s", status, body)
	}
	// A viewer person meets the role matrix as a viewer client does.
	status, _, body = sam.get("/ui/t/acme/users")
	if status != http.StatusForbidden || !strings.Contains(html.UnescapeString(body), `User "sam@example.com" has role viewer; this call needs role admin or platform-admin.`) {
		t.Fatalf("viewer on the people page: %d\n%s", status, body)
	}
	if status, _, _ = sam.get("/ui/t/acme/i/sandbox/webhooks"); status != 200 {
		t.Fatalf("viewer reading webhooks: %d", status)
	}

	// The boss signs Sam out everywhere: both browsers are signed out.
	status, _, _ = admin.post("/ui/t/acme/users/sam@example.com/sign-out-everywhere", url.Values{"csrf": {admin.csrf("/ui/t/acme/users")}})
	if status != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d", status)
	}
	for _, b := range []*browser{sam, other} {
		if status, h, _ := b.get("/ui/t/acme/i/sandbox/webhooks"); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/signin") {
			t.Fatalf("after sign out everywhere: %d %s", status, h.Get("Location"))
		}
	}

	// The audit page shows what the boss did, under the boss's email.
	status, _, body = admin.get("/ui/t/acme/audit?actor=boss@example.com")
	body = html.UnescapeString(body)
	for _, want := range []string{"user.create", "user " + "sam@example.com", "user.sign-out-everywhere", "boss@example.com", "admin"} {
		if status != 200 || !strings.Contains(body, want) {
			t.Fatalf("audit page lacks %q: %d\n%s", want, status, body)
		}
	}
	if strings.Contains(body, "auth.sign-in.failed") {
		t.Fatal("the actor filter let through another actor's entries")
	}
}

// nextCode returns the code of the next TOTP step, which is accepted
// now (one step either side is) and was not used yet: the confirming code
// was of this step.
func nextCode(t *testing.T, secret string) string {
	t.Helper()
	c, err := access.TOTPCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
