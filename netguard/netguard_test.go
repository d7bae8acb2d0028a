package netguard_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/heraldhooks/herald/netguard"
)

// The classifier is pure data: nothing here is dialed.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		addr string
		kind string // "" for public
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"2606:4700:4700::1111", ""},
		{"127.0.0.1", "loopback"},
		{"127.1.2.3", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.1.2.3", "private"},
		{"64:ff9b::7f00:1", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"172.32.0.1", ""},
		{"192.168.1.1", "private"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fd00::1", "unique-local (private)"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"0.0.0.0", "\"this network\""},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"192.0.2.10", "documentation"},
		{"2001:db8::1", "documentation"},
		{"2002:7f00:1::", "6to4"},
	} {
		got := netguard.Classify(netip.MustParseAddr(tc.addr))
		if got != tc.kind {
			t.Errorf("Classify(%s) = %q, want %q", tc.addr, got, tc.kind)
		}
		if netguard.IsPublic(netip.MustParseAddr(tc.addr)) != (tc.kind == "") {
			t.Errorf("IsPublic(%s) disagrees with Classify", tc.addr)
		}
	}
}

// The guard judges the address actually dialed: a loopback server is
// refused however its URL spells the address, and reached when allowed.
func TestDialerRefusesLoopbackHoweverSpelled(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	client := func(allow bool) *http.Client {
		tr := &http.Transport{DialContext: netguard.NewDialer(allow).DialContext, Proxy: nil}
		return &http.Client{Transport: tr}
	}
	for _, host := range []string{"127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]", "[::1]", "0x7f.1", "0177.0.0.1"} {
		resp, err := client(false).Get("http://" + host + ":" + port + "/")
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: request went through", host)
			continue
		}
		var be *netguard.BlockedError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), "--allow-private-destinations") {
			t.Errorf("%s: error %v, want a BlockedError naming the flag", host, err)
		}
	}
	if hits != 0 {
		t.Fatalf("receiver got %d requests, want 0", hits)
	}
	resp, err := client(true).Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed: %v", err)
	}
	resp.Body.Close()
	if hits != 1 {
		t.Fatalf("allowed: receiver got %d requests, want 1", hits)
	}
}

func TestParseLegacyIPv4(t *testing.T) {
	for host, want := range map[string]string{
		"2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "0x7f.1": "127.0.0.1",
		"0177.0.0.1": "127.0.0.1", "127.1": "127.0.0.1", "10.0x10.1": "10.16.0.1",
		"127.0.0.1": "", "example.com": "", "1.2.3.4.5": "", "4294967296": "", "256.1": "", "": "",
	} {
		a, ok := netguard.ParseLegacyIPv4(host)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != want {
			t.Errorf("ParseLegacyIPv4(%q) = %q, want %q", host, got, want)
		}
	}
}
