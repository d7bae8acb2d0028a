// Package netguard keeps Herald from being used to reach places it should
// not (SSRF): webhook URLs are written by tenants, so a URL pointing at the
// database, the cloud metadata service or an intranet host must fail.
//
// The check runs on the resolved IP at dial time (net.Dialer.Control), not
// on the host name, so DNS tricks (a name resolving to 127.0.0.1, rebinding
// between check and use) and odd spellings (decimal IPs, IPv4-mapped IPv6)
// are all judged by the address actually dialed.
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// BlockedError is returned by the dialer when its Policy refuses a
// destination. It is data, so the caller can word the refusal its own way;
// Error gives the sentence an admin reads on the attempt.
type BlockedError struct {
	// Addr is the address refused, IPv4-mapped IPv6 unmapped.
	Addr netip.Addr
	// Kind says what the address is ("loopback", "private", "cloud
	// metadata"...).
	Kind string
	// Allowed is the Policy's Allow list, for the message: the ranges the
	// address is outside of.
	Allowed []netip.Prefix
	// Metadata is set when Addr is a cloud metadata address, which only an
	// Allow entry naming exactly that address opens.
	Metadata bool
}

// Error names the rule that refused the destination and says how to allow
// it.
func (e *BlockedError) Error() string {
	if e.Metadata {
		return fmt.Sprintf("destination %s is a cloud metadata address (%s); Herald refuses it even with --allow-private-destinations or an --allow-destination range that holds it, unless started with --allow-destination %s naming exactly this address",
			e.Addr, e.Kind, netip.PrefixFrom(e.Addr, e.Addr.BitLen()))
	}
	if len(e.Allowed) == 0 {
		return fmt.Sprintf("destination %s is a %s address; Herald refuses non-public destinations unless started with --allow-destination <CIDR> naming its range or --allow-private-destinations", e.Addr, e.Kind)
	}
	ranges := make([]string, len(e.Allowed))
	for i, p := range e.Allowed {
		ranges[i] = p.String()
	}
	return fmt.Sprintf("destination %s is a %s address outside the allowed ranges (%s); Herald refuses other non-public destinations unless started with an --allow-destination CIDR that holds it or --allow-private-destinations",
		e.Addr, e.Kind, strings.Join(ranges, ", "))
}

// special lists the non-public ranges with what they are. Order matters only
// for the name given; any match refuses.
var special = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // includes 255.255.255.255 broadcast
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"}, // embeds an IPv4 address we would not check
	{netip.MustParsePrefix("fc00::/7"), "unique-local (private)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// Classify returns "" for a public unicast address, or what kind of
// non-public address a is. IPv4-mapped IPv6 addresses (::ffff:127.0.0.1)
// are judged as the IPv4 address they carry; NAT64 addresses
// (64:ff9b::/96) as the IPv4 address they translate to.
func Classify(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.Unmap()
	if v4, ok := nat64(a); ok {
		return Classify(v4)
	}
	for _, s := range special {
		if s.prefix.Contains(a) {
			return s.kind
		}
	}
	if a.Is6() && !netip.MustParsePrefix("2000::/3").Contains(a) {
		return "non-global IPv6" // everything outside global unicast
	}
	return ""
}

// nat64 returns the IPv4 address a well-known-prefix NAT64 address
// (64:ff9b::/96) translates to.
func nat64(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() || !netip.MustParsePrefix("64:ff9b::/96").Contains(a) {
		return netip.Addr{}, false
	}
	b := a.As16()
	return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
}

// IsPublic reports whether a is a public unicast address Herald may send to
// by default.
func IsPublic(a netip.Addr) bool { return Classify(a) == "" }

// metadata are the cloud metadata services' addresses: they hand out the
// credentials of the machine Herald runs on, so no broad rule opens them.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack, ...
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
}

// IsMetadata reports whether a is a cloud metadata service's address,
// also spelled as IPv4-mapped IPv6 or reached through NAT64.
func IsMetadata(a netip.Addr) bool {
	a = a.Unmap()
	if v4, ok := nat64(a); ok {
		a = v4
	}
	return slices.Contains(metadata, a)
}

// CoversMetadata reports whether the range p holds a cloud metadata
// service's address.
func CoversMetadata(p netip.Prefix) bool {
	return slices.ContainsFunc(metadata, p.Contains)
}

// Policy says which destinations Herald may connect to. Public unicast
// addresses are always allowed; the zero Policy allows nothing else.
type Policy struct {
	// Allow opens these ranges even though they are not public. A cloud
	// metadata address is opened only by an entry that is exactly that
	// address (a /32 or /128), never by a broader range holding it.
	// IPv4-mapped IPv6 prefixes (::ffff:10.0.0.0/104) are read as the IPv4
	// prefix they carry.
	Allow []netip.Prefix
	// AllowPrivate opens every non-public address except the cloud
	// metadata addresses: local development, tests, the demo.
	AllowPrivate bool
}

// Check returns nil when p lets Herald connect to a, or a *BlockedError
// naming the rule that refuses it. It is pure data: nothing is dialed.
// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
func (p Policy) Check(a netip.Addr) error {
	a = a.Unmap()
	kind := Classify(a)
	if kind == "" {
		return nil
	}
	if IsMetadata(a) {
		for _, pre := range p.Allow {
			pre = unmapPrefix(pre)
			if pre.IsSingleIP() && pre.Addr() == a {
				return nil
			}
		}
		return &BlockedError{Addr: a, Kind: kind, Allowed: p.Allow, Metadata: true}
	}
	for _, pre := range p.Allow {
		if unmapPrefix(pre).Contains(a) {
			return nil
		}
	}
	if p.AllowPrivate {
		return nil
	}
	return &BlockedError{Addr: a, Kind: kind, Allowed: p.Allow}
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:a.b.c.d/n, n >= 96)
// into the IPv4 prefix it stands for, since Check judges unmapped
// addresses; any other prefix is returned masked.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// ParsePrefix reads an --allow-destination value: a CIDR range
// ("10.20.0.0/16", "fd12::/64") or a single address, which stands for
// itself (/32 or /128). It refuses a CIDR with bits set beyond its prefix
// length ("10.20.0.1/16"), which is almost always a typo for something
// else.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR range such as 10.20.0.0/16 nor an IP address", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR range such as 10.20.0.0/16 or fd12::/64", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has address bits set beyond its /%d; write the range as %s, or the single address as %s",
			s, p.Bits(), m, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return p, nil
}

// Control returns a net.Dialer Control function that refuses, with a
// *BlockedError, to connect where p does not allow. It sees the address
// after name resolution, just before connect.
func Control(p Policy) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("netguard: cannot judge destination %q: %w", address, err)
		}
		return p.Check(ap.Addr())
	}
}

// Dialer dials only where its Policy allows.
type Dialer struct {
	net.Dialer
}

// NewDialer returns a Dialer whose Control applies Control(p).
func NewDialer(p Policy) *Dialer {
	d := &Dialer{}
	d.Control = Control(p)
	return d
}

// DialContext dials address after reading legacy IPv4 spellings the way
// curl and browsers do (decimal "2130706433", hex "0x7f.1", octal
// "0177.0.0.1"), so such a URL is judged as the address it stands for
// instead of going to DNS as a host name.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err == nil {
		if a, ok := ParseLegacyIPv4(host); ok {
			address = net.JoinHostPort(a.String(), port)
		}
		if Invalid(host) {
			// RFC 6761: no name under .invalid exists; no resolver is asked.
			return nil, &net.OpError{Op: "dial", Net: network,
				Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}
	}
	return d.Dialer.DialContext(ctx, network, address)
}

// Invalid reports whether host is under the special-use domain .invalid
// (RFC 6761), which never resolves: Herald answers "not found" for it
// without asking a DNS server.
func Invalid(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "invalid" || strings.HasSuffix(h, ".invalid")
}

// ParseLegacyIPv4 reads the inet_aton forms of an IPv4 address: one to four
// dot-separated parts, each decimal, octal (leading 0) or hex (leading 0x),
// the last part filling the remaining bytes. It reports false for anything
// else, including ordinary dotted quads (net handles those) and host names.
func ParseLegacyIPv4(host string) (netip.Addr, bool) {
	if host == "" {
		return netip.Addr{}, false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return netip.Addr{}, false
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 255 {
			return netip.Addr{}, false
		}
		n |= v << (24 - 8*i)
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
