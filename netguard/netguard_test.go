package netguard_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
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

// The policy is pure data too: each case is an address and the rules,
// and the answer is allowed or the words of the refusal.
func TestPolicyCheck(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		addr   string
		policy netguard.Policy
		// refused is "" when allowed, else words the refusal must contain.
		refused []string
	}{
		{"public by default", "8.8.8.8", netguard.Policy{}, nil},
		{"public IPv6 by default", "2606:4700:4700::1111", netguard.Policy{}, nil},
		{"loopback by default", "127.0.0.1", netguard.Policy{}, []string{"127.0.0.1 is a loopback address", "--allow-destination", "--allow-private-destinations"}},
		{"private by default", "10.1.2.3", netguard.Policy{}, []string{"private"}},
		{"allowed /32", "127.0.0.1", netguard.Policy{Allow: pfx("127.0.0.1/32")}, nil},
		{"outside the allowed /32", "127.0.0.2", netguard.Policy{Allow: pfx("127.0.0.1/32")},
			[]string{"destination 127.0.0.2 is a loopback address outside the allowed ranges (127.0.0.1/32)", "--allow-destination"}},
		{"every range named", "10.9.9.9", netguard.Policy{Allow: pfx("10.0.0.0/16", "fd12::/64")},
			[]string{"outside the allowed ranges (10.0.0.0/16, fd12::/64)"}},
		{"inside an allowed range", "10.0.200.1", netguard.Policy{Allow: pfx("10.0.0.0/16")}, nil},
		{"allowed IPv6 range", "fd12::7", netguard.Policy{Allow: pfx("fd12::/64")}, nil},
		{"IPv4-mapped judged as IPv4", "::ffff:127.0.0.1", netguard.Policy{Allow: pfx("127.0.0.1/32")}, nil},
		{"IPv4-mapped outside the range", "::ffff:127.0.0.2", netguard.Policy{Allow: pfx("127.0.0.1/32")}, []string{"destination 127.0.0.2 is a loopback"}},
		{"IPv4-mapped prefix read as IPv4", "127.0.0.1", netguard.Policy{Allow: pfx("::ffff:127.0.0.1/128")}, nil},
		{"IPv4 range does not open IPv6 loopback", "::1", netguard.Policy{Allow: pfx("127.0.0.0/8")}, []string{"::1 is a loopback"}},
		{"all private", "192.168.1.1", netguard.Policy{AllowPrivate: true}, nil},
		{"all private, loopback", "127.0.0.2", netguard.Policy{AllowPrivate: true, Allow: pfx("127.0.0.1/32")}, nil},
		{"metadata by default", "169.254.169.254", netguard.Policy{}, []string{"cloud metadata", "--allow-destination 169.254.169.254/32"}},
		{"metadata with all private", "169.254.169.254", netguard.Policy{AllowPrivate: true}, []string{"cloud metadata", "even with --allow-private-destinations"}},
		{"metadata in a broader range", "169.254.169.254", netguard.Policy{Allow: pfx("169.254.0.0/16")}, []string{"cloud metadata"}},
		{"metadata in 0.0.0.0/0", "169.254.169.254", netguard.Policy{Allow: pfx("0.0.0.0/0"), AllowPrivate: true}, []string{"cloud metadata"}},
		{"link-local beside metadata in the range", "169.254.1.1", netguard.Policy{Allow: pfx("169.254.0.0/16")}, nil},
		{"metadata named exactly", "169.254.169.254", netguard.Policy{Allow: pfx("169.254.169.254/32")}, nil},
		{"metadata IPv4-mapped", "::ffff:169.254.169.254", netguard.Policy{AllowPrivate: true}, []string{"destination 169.254.169.254 is a cloud metadata"}},
		{"metadata IPv4-mapped, named exactly", "::ffff:169.254.169.254", netguard.Policy{Allow: pfx("169.254.169.254/32")}, nil},
		{"metadata named as mapped /128", "169.254.169.254", netguard.Policy{Allow: pfx("::ffff:169.254.169.254/128")}, nil},
		{"metadata through NAT64", "64:ff9b::a9fe:a9fe", netguard.Policy{AllowPrivate: true}, []string{"cloud metadata"}},
		{"IPv6 metadata", "fd00:ec2::254", netguard.Policy{AllowPrivate: true, Allow: pfx("fd00::/8")}, []string{"fd00:ec2::254 is a cloud metadata", "--allow-destination fd00:ec2::254/128"}},
		{"IPv6 metadata named exactly", "fd00:ec2::254", netguard.Policy{Allow: pfx("fd00:ec2::254/128")}, nil},
		{"IPv6 metadata's neighbour", "fd00:ec2::253", netguard.Policy{AllowPrivate: true}, nil},
	} {
		err := tc.policy.Check(netip.MustParseAddr(tc.addr))
		if tc.refused == nil {
			if err != nil {
				t.Errorf("%s: Check(%s) = %v, want allowed", tc.name, tc.addr, err)
			}
			continue
		}
		var be *netguard.BlockedError
		if !errors.As(err, &be) {
			t.Errorf("%s: Check(%s) = %v, want a *BlockedError", tc.name, tc.addr, err)
			continue
		}
		for _, w := range tc.refused {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: refusal %q does not say %q", tc.name, err, w)
			}
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1/32": "127.0.0.1/32", "10.20.0.0/16": "10.20.0.0/16", " fd12::/64 ": "fd12::/64",
		"127.0.0.1": "127.0.0.1/32", "::1": "::1/128", "169.254.169.254": "169.254.169.254/32",
		"10.20.0.1/16": "error: write the range as 10.20.0.0/16", "nonsense": "error: neither", "10.0.0.0/33": "error: not a CIDR",
		"": "error: neither",
	} {
		p, err := netguard.ParsePrefix(in)
		got := p.String()
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != want && !(strings.HasPrefix(want, "error: ") && err != nil && strings.Contains(got, strings.TrimPrefix(want, "error: "))) {
			t.Errorf("ParsePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

// The guard judges the address actually dialed: a loopback server is
// refused however its URL spells the address, and reached when allowed.
// Only loopback is dialed.
func TestDialerRefusesLoopbackHoweverSpelled(t *testing.T) {
	// The handler runs on the server's goroutine; the test reads what it
	// counted.
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	client := func(p netguard.Policy) *http.Client {
		tr := &http.Transport{DialContext: netguard.NewDialer(p).DialContext, Proxy: nil}
		return &http.Client{Transport: tr}
	}
	for _, host := range []string{"127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]", "[::1]", "0x7f.1", "0177.0.0.1"} {
		resp, err := client(netguard.Policy{}).Get("http://" + host + ":" + port + "/")
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
	if n := hits.Load(); n != 0 {
		t.Fatalf("receiver got %d requests, want 0", n)
	}
	resp, err := client(netguard.Policy{AllowPrivate: true}).Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed: %v", err)
	}
	resp.Body.Close()
	if n := hits.Load(); n != 1 {
		t.Fatalf("allowed: receiver got %d requests, want 1", n)
	}
}

// An allowed range opens exactly that range: with 127.0.0.1/32 allowed, a
// receiver on 127.0.0.1 is reached and one on 127.0.0.2 is not.
func TestDialerOpensOnlyTheAllowedRange(t *testing.T) {
	var hits [2]atomic.Int32 // counted on the servers' goroutines
	var urls [2]string
	for i, host := range []string{"127.0.0.1", "127.0.0.2"} {
		ln, err := net.Listen("tcp", host+":0")
		if err != nil {
			t.Fatalf("listen on %s: %v", host, err)
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits[i].Add(1) })}}
		srv.Start()
		defer srv.Close()
		urls[i] = srv.URL
	}
	p := netguard.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	client := &http.Client{Transport: &http.Transport{DialContext: netguard.NewDialer(p).DialContext, Proxy: nil}}

	resp, err := client.Get(urls[0])
	if err != nil {
		t.Fatalf("127.0.0.1 with 127.0.0.1/32 allowed: %v", err)
	}
	resp.Body.Close()
	_, err = client.Get(urls[1])
	var be *netguard.BlockedError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "outside the allowed ranges (127.0.0.1/32)") {
		t.Fatalf("127.0.0.2 with 127.0.0.1/32 allowed: error %v, want a refusal naming the range", err)
	}
	if got := [2]int32{hits[0].Load(), hits[1].Load()}; got != [2]int32{1, 0} {
		t.Fatalf("receivers got %v requests, want [1 0]", got)
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

func TestCoversMetadata(t *testing.T) {
	for cidr, want := range map[string]bool{
		"169.254.169.254/32": true,
		"169.254.0.0/16":     true,
		"0.0.0.0/0":          true,
		"fd00:ec2::/32":      true,
		"10.0.0.0/8":         false,
		"169.254.169.253/32": false,
		"127.0.0.1/32":       false,
	} {
		if got := netguard.CoversMetadata(netip.MustParsePrefix(cidr)); got != want {
			t.Errorf("CoversMetadata(%s) = %v, want %v", cidr, got, want)
		}
	}
}

func TestInvalid(t *testing.T) {
	for host, want := range map[string]bool{
		"receiver.invalid":  true,
		"a.b.INVALID.":      true,
		"invalid":           true,
		"invalid.example":   false,
		"receiver.invalids": false,
		"127.0.0.1":         false,
	} {
		if got := netguard.Invalid(host); got != want {
			t.Errorf("Invalid(%q) = %v, want %v", host, got, want)
		}
	}
}
