package main

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/heraldhooks/herald/netguard"
)

// prefixesFlag is the repeatable --allow-destination: each use adds a
// range. The first use on the command line replaces the ranges the
// environment gave, as any flag overrides its environment variable.
type prefixesFlag struct {
	list *[]netip.Prefix
	used bool
}

func (f *prefixesFlag) String() string {
	if f == nil || f.list == nil {
		return ""
	}
	s := make([]string, len(*f.list))
	for i, p := range *f.list {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (f *prefixesFlag) Set(v string) error {
	p, err := netguard.ParsePrefix(v)
	if err != nil {
		return err
	}
	if !f.used {
		*f.list, f.used = nil, true
	}
	*f.list = append(*f.list, p)
	return nil
}

// prefixes reads a comma-separated list of CIDR ranges (or addresses).
func (e *envReader) prefixes(key string) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range strings.Split(os.Getenv(key), ",") {
		if strings.TrimSpace(v) == "" {
			continue
		}
		p, err := netguard.ParsePrefix(v)
		if err != nil {
			if e.err == nil {
				e.err = fmt.Errorf("%s: %w", key, err)
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

// loadDestinationCAs returns the system's roots plus the certificates of
// the PEM bundle in file, for receivers on a private PKI; nil (the
// system's roots) when file is "". The error says what is wrong with the
// file.
func loadDestinationCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--destination-ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots here: only the file's
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--destination-ca-file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return pool, nil
}
