package netguard_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/netguard"
)

// The fuzz targets here are pure data too: nothing is dialed.

// dialedAddr returns the address Dialer.DialContext connects to for a URL
// host that is an IP address however spelled (a literal, IPv4-mapped,
// with a zone, or a legacy inet_aton form), and false for a host name,
// which DNS resolves and Control then judges by what it resolved to.
func dialedAddr(host string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a, true
	}
	return netguard.ParseLegacyIPv4(host)
}

// checkRefusal fails unless Control under the default Policy refuses the
// address a when Classify calls it non-public, with a BlockedError naming
// it and its kind, and lets it through when it is public.
func checkRefusal(t *testing.T, a netip.Addr, port string) {
	t.Helper()
	kind := netguard.Classify(a)
	err := netguard.Control(netguard.Policy{})("tcp", net.JoinHostPort(a.String(), port), nil)
	if kind == "" {
		if err != nil {
			t.Fatalf("Control refused public address %s: %v", a, err)
		}
		return
	}
	var be *netguard.BlockedError
	if !errors.As(err, &be) || be.Addr != a.Unmap() || be.Kind != kind || be.Error() == "" {
		t.Fatalf("Control(%s), a %s address, returned %#v", a, kind, err)
	}
}

// FuzzDestination: a webhook URL that ValidateURL accepts never reaches an
// address the classifier calls non-public: when its host is an IP address,
// however spelled, the dialer's Control refuses it under the default
// Policy (and --allow-private-destinations still refuses the cloud
// metadata service).
func FuzzDestination(f *testing.F) {
	for _, s := range []string{"https://example.com/hook", "http://127.0.0.1:8080/", "http://2130706433/", "http://0x7f.1/",
		"http://0177.0.0.1/", "http://127.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
		"http://[64:ff9b::a9fe:a9fe]/", "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
		"http://[fe80::1%25eth0]/", "http://[2001:db8::1]/", "http://[2606:4700::1%25x]/", "https://8.8.8.8/", "http://0/",
		"http://10.0x10.1/", "http://100.64.0.1/", "http://[::]/", "http://[2002:7f00:1::]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if herald.ValidateURL("url", raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("ValidateURL accepted %q, which does not parse: %v", raw, err)
		}
		a, ok := dialedAddr(u.Hostname())
		if !ok {
			return
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		checkRefusal(t, a, port)
		if netguard.IsMetadata(a) {
			if err := (netguard.Policy{AllowPrivate: true}).Check(a); err == nil {
				t.Fatalf("%q reaches the cloud metadata service %s with --allow-private-destinations", raw, a)
			}
		}
	})
}

// FuzzClassify: every address is judged the same however it is written
// (IPv4, IPv4-mapped IPv6, NAT64); the default Policy refuses exactly the
// non-public ones; an --allow-destination range opens what it holds but
// never the cloud metadata service unless it names exactly that address.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.1.2.3", "8.8.8.8", "169.254.169.254", "100.64.0.1", "192.0.2.1", "255.255.255.255",
		"0.0.0.0", "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "2001:db8::1", "2606:4700::1111", "64:ff9b::808:808",
		"64:ff9b::7f00:1", "::ffff:10.0.0.1", "2002:c000:204::1", "ff02::1", "4000::1"} {
		f.Add(netip.MustParseAddr(s).AsSlice(), uint8(8))
	}
	f.Fuzz(func(t *testing.T, b []byte, bits uint8) {
		var a netip.Addr
		switch {
		case len(b) >= 16:
			a = netip.AddrFrom16([16]byte(b[:16]))
		case len(b) >= 4:
			a = netip.AddrFrom4([4]byte(b[:4]))
		default:
			return
		}
		kind := netguard.Classify(a)
		checkRefusal(t, a, "443")
		if a.Is4() {
			mapped := netip.AddrFrom16(a.As16())
			n := a.As4()
			nat64 := netip.AddrFrom16([16]byte{0: 0, 1: 0x64, 2: 0xff, 3: 0x9b, 12: n[0], 13: n[1], 14: n[2], 15: n[3]})
			for _, other := range []netip.Addr{mapped, nat64} {
				if k := netguard.Classify(other); k != kind {
					t.Fatalf("Classify(%s) = %q but Classify(%s) = %q", a, kind, other, k)
				}
				if netguard.IsMetadata(other) != netguard.IsMetadata(a) {
					t.Fatalf("IsMetadata(%s) and IsMetadata(%s) differ", a, other)
				}
				checkRefusal(t, other, "443")
			}
		}
		if kind == "" {
			return
		}
		u := a.Unmap()
		wide, err := u.Prefix(int(bits) % (u.BitLen() + 1))
		if err != nil {
			t.Fatal(err)
		}
		exact := netip.PrefixFrom(u, u.BitLen())
		private := netguard.Policy{AllowPrivate: true}.Check(a)
		opened := netguard.Policy{Allow: []netip.Prefix{wide}}.Check(a)
		named := netguard.Policy{Allow: []netip.Prefix{exact}}.Check(a)
		if named != nil {
			t.Fatalf("an --allow-destination of exactly %s does not open it: %v", exact, named)
		}
		if netguard.IsMetadata(a) {
			if private == nil || (opened == nil && wide != exact) {
				t.Fatalf("the metadata address %s is opened by --allow-private-destinations (%v) or by the range %s (%v)", a, private, wide, opened)
			}
		} else if private != nil || opened != nil {
			t.Fatalf("%s, a %s address, is refused by --allow-private-destinations (%v) or by the range %s holding it (%v)", a, kind, private, wide, opened)
		}
	})
}

// FuzzParseLegacyIPv4: every inet_aton spelling of an address (one to four
// parts, each decimal, octal or hex) reads as that address; a dotted quad
// that net reads itself, or a host name, does not read at all.
func FuzzParseLegacyIPv4(f *testing.F) {
	for _, s := range []string{"2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1", "10.0x10.1", "127.0.0.1", "example.com",
		"1.2.3.4.5", "4294967296", "256.1", "", "0x", "08", "0x1_0", "1..2", "0X7F.1", "+1", "1.2.3.0400"} {
		f.Add(s, uint32(0x7f000001), uint8(0))
	}
	f.Fuzz(func(t *testing.T, host string, n uint32, form uint8) {
		a, ok := netguard.ParseLegacyIPv4(host)
		if _, err := netip.ParseAddr(host); err == nil && ok {
			t.Fatalf("ParseLegacyIPv4(%q) read an address net reads itself", host)
		}
		if ok && !a.Is4() {
			t.Fatalf("ParseLegacyIPv4(%q) = %s", host, a)
		}

		want := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		q := want.As4()
		part := func(v uint32) string {
			switch form / 4 % 3 {
			case 1:
				return "0x" + strconv.FormatUint(uint64(v), 16)
			case 2:
				return "0" + strconv.FormatUint(uint64(v), 8)
			}
			return strconv.FormatUint(uint64(v), 10)
		}
		var spelled string
		switch form % 4 {
		case 0:
			spelled = part(n)
		case 1:
			spelled = part(uint32(q[0])) + "." + part(n&0xffffff)
		case 2:
			spelled = part(uint32(q[0])) + "." + part(uint32(q[1])) + "." + part(n&0xffff)
		case 3:
			spelled = fmt.Sprintf("%s.%s.%s.%s", part(uint32(q[0])), part(uint32(q[1])), part(uint32(q[2])), part(uint32(q[3])))
		}
		got, ok := netguard.ParseLegacyIPv4(spelled)
		if _, err := netip.ParseAddr(spelled); err == nil {
			if ok {
				t.Fatalf("ParseLegacyIPv4(%q) read a dotted quad", spelled)
			}
		} else if !ok || got != want {
			t.Fatalf("ParseLegacyIPv4(%q) = %s, %v; want %s", spelled, got, ok, want)
		}
	})
}

// FuzzParsePrefix: an --allow-destination value that parses is a masked
// range that reads back as itself; a single address stands for itself.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.20.0.0/16", "fd12::/64", "10.20.0.1/16", "169.254.169.254", "::ffff:10.0.0.0/104", " 10.0.0.0/8 ",
		"10.0.0.0/33", "fe80::1%eth0", "fe80::/10", "", "/", "1.2.3.4/", "0.0.0.0/0", "::/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := netguard.ParsePrefix(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParsePrefix(%q) failed without saying why", s)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() {
			t.Fatalf("ParsePrefix(%q) = %s, not a masked range", s, p)
		}
		back, err := netguard.ParsePrefix(p.String())
		if err != nil || back != p {
			t.Fatalf("ParsePrefix(%q) = %s, which reads back as %s, %v", s, p, back, err)
		}
		if a, err := netip.ParseAddr(s); err == nil && (p.Addr() != a || p.Bits() != a.BitLen()) {
			t.Fatalf("ParsePrefix(%q) = %s, not the address itself", s, p)
		}
	})
}
