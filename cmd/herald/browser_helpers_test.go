package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// updateScreenshots makes the browser tests write docs/screenshots/*.png:
//
//	go test ./cmd/herald -run Browser -update-screenshots
var updateScreenshots = flag.Bool("update-screenshots", false, "write the web UI screenshots in docs/screenshots")

// chromiumPath is Debian's Chromium. The tests never let chromedp look for,
// or download, a browser of its own; .ci/run installs this one.
const chromiumPath = "/usr/bin/chromium"

// browser is a headless Chromium tab driving the web UI of one herald.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	// lastSecret is the TOTP key the last account setup showed.
	lastSecret string

	mu      sync.Mutex
	dialogs []string // JavaScript dialogs that opened: alert() must never run
}

// newBrowser starts Chromium for the test, at a desktop window size, and
// closes it when the test ends.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser tests need Debian's Chromium at %s (apt-get install -y chromium; .ci/run does it): %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx); err != nil { // start the browser on a context without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			b.mu.Lock()
			b.dialogs = append(b.dialogs, d.Message)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// do runs steps with a deadline, failing the test with what was running.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage text:\n%s", what, err, b.pageText())
	}
}

// runB runs one action that returns a value.
func runB[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v\npage text:\n%s", what, err, b.pageText())
	}
	return v
}

// pageText is the visible text of the page, for failure messages.
func (b *browser) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

// open navigates to a path of the UI.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
}

// submit clicks a submit button and waits for the page it leads to to show
// want (an XPath or CSS selector that only that page matches).
func (b *browser) submit(button, want string) {
	b.t.Helper()
	b.do("submit "+button, chromedp.Click(chromedp.CSS(button)), chromedp.WaitVisible(want))
}

// text returns the text content of the first element matching the CSS
// selector.
func (b *browser) text(css string) string {
	b.t.Helper()
	return runB(b, "text of "+css, chromedp.TextContent(chromedp.CSS(css)))
}

// mustContain fails unless the page's visible text contains each of want.
func (b *browser) mustContain(want ...string) {
	b.t.Helper()
	text := b.pageText()
	for _, w := range want {
		if !strings.Contains(text, w) {
			b.t.Fatalf("page does not show %q; it shows:\n%s", w, text)
		}
	}
}

// screenshot saves the page, whole, as docs/screenshots/<name>.png when
// the test runs with -update-screenshots.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if !*updateScreenshots {
		return
	}
	png := runB(b, "screenshot "+name, chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// phone switches the viewport to a 390 px wide phone, runs fn, and
// switches back.
// fitsWidth fails unless the page is no wider than the viewport: at phone
// width nothing may need sideways scrolling.
func (b *browser) fitsWidth(what string) {
	b.t.Helper()
	sizes := runB(b, "page width", chromedp.Evaluate[[]any](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if len(sizes) != 2 || sizes[0].(float64) > sizes[1].(float64) {
		b.t.Fatalf("%s is wider than the viewport (scroll width, viewport width): %v", what, sizes)
	}
}

func (b *browser) phone(fn func()) {
	b.t.Helper()
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)))
	fn()
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 900, chromedp.EmulateScale(1)))
}

// noDialogs fails if a JavaScript dialog (alert, confirm) ever opened.
func (b *browser) noDialogs() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) > 0 {
		b.t.Fatalf("a JavaScript dialog opened: %q", b.dialogs)
	}
}

// signIn signs in as an API client through its sign-in form
// (--ui-api-client-sign-in).
func (b *browser) signIn(client, secret string) {
	b.t.Helper()
	b.open("/ui/")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.CSS("#apiClient")),
		chromedp.SetValue(chromedp.CSS("#apiClient"), client),
		chromedp.SetValue(chromedp.CSS("#secret"), secret),
	)
	b.submit(`#signin-client button`, `form[action="/ui/signout"]`)
}
