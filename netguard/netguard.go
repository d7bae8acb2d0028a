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
	"strconv"
	"strings"
	"syscall"
)

// BlockedError is returned by the dialer when a destination is not public.
type BlockedError struct {
	Addr netip.Addr
	// Kind says what the address is ("loopback", "private", ...).
	Kind string
}

// Error explains the refusal and how to allow it.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("destination %s is a %s address; Herald refuses non-public destinations unless started with --allow-private-destinations", e.Addr, e.Kind)
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
	if a.Is6() && netip.MustParsePrefix("64:ff9b::/96").Contains(a) {
		b := a.As16()
		return Classify(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
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

// IsPublic reports whether a is a public unicast address Herald may send to
// by default.
func IsPublic(a netip.Addr) bool { return Classify(a) == "" }

// Control returns a net.Dialer Control function that refuses to connect to
// non-public addresses with a *BlockedError, unless allowPrivate is set.
// It sees the address after name resolution, just before connect.
func Control(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("netguard: cannot judge destination %q: %w", address, err)
		}
		if kind := Classify(ap.Addr()); kind != "" {
			return &BlockedError{Addr: ap.Addr().Unmap(), Kind: kind}
		}
		return nil
	}
}

// Dialer dials only public addresses, unless AllowPrivate is set.
type Dialer struct {
	net.Dialer
}

// NewDialer returns a Dialer whose Control applies Control(allowPrivate).
func NewDialer(allowPrivate bool) *Dialer {
	d := &Dialer{}
	d.Control = Control(allowPrivate)
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
	}
	return d.Dialer.DialContext(ctx, network, address)
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
