package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhooks/herald/access"
)

var setupPathRE = regexp.MustCompile(`/ui/setup/[A-Za-z0-9_-]+`)

// TestBrowserPeople drives the people story in Chromium on the real
// binary: herald users create makes the first platform admin, who sets up
// their account and invites a nurse; the nurse sets a password, enrols
// TOTP (codes computed from the key the page shows), signs in, changes a
// webhook's URL, and finds that change on the audit page under their
// email with the old and the new URL. Idle past --session-idle, the next
// page asks to sign in again; ten wrong passwords lock the account, and
// the right one is then refused, saying until when.
func TestBrowserPeople(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "herald.db")
	out, err := exec.Command(heraldBin, "users", "create", "--database", db, "--email", "Root@Example.com",
		"--display-name", "Root Admin", "--platform-admin").CombinedOutput()
	rootLink := setupPathRE.FindString(string(out))
	if err != nil || rootLink == "" || !strings.Contains(string(out), "Invited root@example.com (platform-admin)") {
		t.Fatalf("herald users create: %v\n%s", err, out)
	}
	const idle = 4 * time.Second
	p := startHerald(t, nil, "--database", db, "--allow-private-destinations", "--session-idle", idle.String())
	api := p.client(t)
	rcv := newReceiver(t)
	setupWebhook(t, api, rcv.URL+"/hook")

	b := newBrowser(t, p.URL)
	b.open("/ui/signin")
	if n := runB(b, "API client form", chromedp.Evaluate[int](`document.querySelectorAll("#apiClient").length`)); n != 0 {
		t.Fatal("the sign-in page offers API client sign-in, which is off by default")
	}
	setUpAccount(b, rootLink)
	rootSecret := b.lastSecret
	b.signInPerson("root@example.com", rootSecret)
	b.mustContain("root@example.com", "platform-admin")

	// The platform admin invites a nurse as an admin of acme.
	b.open("/ui/t/acme/users")
	b.do("invite", chromedp.SetValue(chromedp.CSS("#user-email"), "nurse@example.com"),
		chromedp.SetValue(chromedp.CSS("#user-name"), "Nurse Joy"), chromedp.SetValue(chromedp.CSS("#user-role"), "admin"))
	b.submit(`form[action="/ui/t/acme/users"] button`, `#setup-link`)
	link := runB(b, "setup link", chromedp.Value(chromedp.CSS("#setup-link")))
	if !strings.HasPrefix(link, p.URL+"/ui/setup/") {
		t.Fatalf("setup link %q", link)
	}
	b.screenshot("people")
	b.submit(`form[action="/ui/signout"] button`, `//p[contains(., "You are signed out")]`)

	// The nurse sets up the account and signs in.
	setUpAccount(b, strings.TrimPrefix(link, p.URL))
	b.screenshot("setup-recovery-codes")
	nurseSecret := b.lastSecret
	b.signInPerson("nurse@example.com", nurseSecret)
	b.mustContain("nurse@example.com", "admin")

	// ...changes the webhook's URL...
	newURL := strings.Replace(rcv.URL+"/hook", "/hook", "/hook-v2", 1)
	b.open("/ui/t/acme/i/sandbox/webhooks/wh-patient-sync")
	b.do("new URL", chromedp.SetValue(chromedp.CSS("#url"), newURL))
	b.submit(`form.settings button[type=submit]`, `//p[contains(@class,"flash")][contains(., "Settings saved")]`)

	// ...and the audit page shows it under the nurse's email.
	b.open("/ui/t/acme/audit?action=webhook.update")
	row := b.text("tr.audit-entry")
	for _, want := range []string{"nurse@example.com", "user", "admin", "webhook.update", "webhook wh-patient-sync", "url", rcv.URL + "/hook" + " → " + newURL} {
		if !strings.Contains(row, want) {
			t.Fatalf("the audit entry of the change lacks %q:\n%s", want, row)
		}
	}
	b.screenshot("audit")

	// Idle past the limit: the next page asks to sign in again. Waiting
	// out the limit is the point here, so this waits on the clock.
	<-time.After(idle + 1500*time.Millisecond)
	b.open("/ui/t/acme/i/sandbox/webhooks")
	b.do("signed out when idle", chromedp.WaitVisible(chromedp.CSS("#email")))
	b.mustContain("You were signed out after 4 seconds without activity")

	// Ten wrong passwords lock the account; the right one is refused then.
	for i := range 10 {
		b.fillSignIn("nurse@example.com", "not the password "+string(rune('a'+i)), "000000")
		b.submit(`#signin-person button`, `#signin-error`)
	}
	b.mustContain("locked after 10 failed sign-ins, until")
	code, _ := access.TOTPCode(nurseSecret, time.Now().Add(30*time.Second))
	b.fillSignIn("nurse@example.com", browserPassword, code)
	b.submit(`#signin-person button`, `#signin-error`)
	if msg := b.text("#signin-error"); !strings.Contains(msg, "This account is locked after 10 failed sign-ins, until 20") {
		t.Fatalf("the right password on a locked account: %q", msg)
	}
	b.noDialogs()
}

const browserPassword = "four unrelated words here"

// setUpAccount follows a setup link: password, TOTP (the code computed
// from the key the page shows, kept in b.lastSecret), recovery codes.
func setUpAccount(b *browser, link string) {
	b.t.Helper()
	b.open(link)
	b.do("password", chromedp.WaitVisible(chromedp.CSS("#new-password")),
		chromedp.SetValue(chromedp.CSS("#new-password"), browserPassword),
		chromedp.SetValue(chromedp.CSS("#confirm-password"), browserPassword))
	b.submit(`form[action$="/password"] button`, `#totp-secret`)
	if n := runB(b, "QR code", chromedp.Evaluate[int](`document.querySelectorAll("#totp-qr path").length`)); n != 1 {
		b.t.Fatal("the enrolment page shows no QR code")
	}
	b.lastSecret = b.text("#totp-secret")
	code, err := access.TOTPCode(b.lastSecret, time.Now())
	if err != nil {
		b.t.Fatalf("the key the page shows: %v", err)
	}
	b.do("code", chromedp.SetValue(chromedp.CSS("#code"), code))
	b.submit(`form[action$="/totp"] button`, `#recovery-codes`)
	if n := runB(b, "recovery codes", chromedp.Evaluate[int](`document.querySelectorAll("#recovery-codes li").length`)); n != 10 {
		b.t.Fatalf("%d recovery codes shown, want 10", n)
	}
}

// fillSignIn fills the people's sign-in form.
func (b *browser) fillSignIn(email, password, code string) {
	b.t.Helper()
	b.open("/ui/signin")
	b.do("fill sign-in", chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SetValue(chromedp.CSS("#email"), email),
		chromedp.SetValue(chromedp.CSS("#password"), password),
		chromedp.SetValue(chromedp.CSS("#code"), code))
}

// signInPerson signs in with the next TOTP step's code (the setup's
// confirming code used this step's).
func (b *browser) signInPerson(email, secret string) {
	b.t.Helper()
	code, _ := access.TOTPCode(secret, time.Now().Add(30*time.Second))
	b.fillSignIn(email, browserPassword, code)
	b.submit(`#signin-person button`, `form[action="/ui/signout"]`)
}
