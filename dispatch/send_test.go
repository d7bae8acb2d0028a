package dispatch

import (
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
)

func TestRequestURL(t *testing.T) {
	for _, tt := range []struct {
		url    string
		params []herald.NameValue
		want   string
	}{
		{"https://example.com/hook", nil, "https://example.com/hook"},
		{"https://example.com/hook", []herald.NameValue{{Name: "a", Value: "1"}}, "https://example.com/hook?a=1"},
		// The URL's own query stays exactly as written, parameters follow it.
		{"https://example.com/hook?z=9&a=%2F", []herald.NameValue{{Name: "a", Value: "2"}}, "https://example.com/hook?z=9&a=%2F&a=2"},
		{"https://example.com/hook", []herald.NameValue{{Name: "q s", Value: "a&b=c"}}, "https://example.com/hook?q+s=a%26b%3Dc"},
		{"https://example.com/hook?", []herald.NameValue{{Name: "a", Value: ""}}, "https://example.com/hook?a="},
	} {
		got, err := requestURL(tt.url, tt.params)
		if err != nil || got.String() != tt.want {
			t.Errorf("requestURL(%q, %v) = %q, %v; want %q", tt.url, tt.params, got, err, tt.want)
		}
	}
	if _, err := requestURL("", nil); err == nil || err.Error() != "the webhook has no URL" {
		t.Errorf("requestURL of no URL: %v", err)
	}
	for _, raw := range []string{"ftp://example.com/?token=s3cret", "https:///hook?token=s3cret", "https://exa mple.com/?token=s3cret"} {
		if _, err := requestURL(raw, nil); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("requestURL(%q): %v; want an error that does not quote the URL", raw, err)
		}
	}
}

func TestResponseText(t *testing.T) {
	for in, want := range map[string]string{
		"ok":               "ok",
		"caf\xc3\xa9":      "café",
		"caf\xc3":          "caf",      // é cut in half by the limit
		"\xe2\x82":         "",         // so is €
		"a\xff\xfeb":       "a\uFFFDb", // binary
		"\xf0\x9f\x98\x80": "😀",
	} {
		if got := responseText([]byte(in)); got != want {
			t.Errorf("responseText(%q) = %q, want %q", in, got, want)
		}
	}
}
