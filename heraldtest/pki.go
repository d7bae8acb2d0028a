package heraldtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority made for one test.
type CA struct {
	// Cert is the CA's own certificate.
	Cert *x509.Certificate
	// PEM is Cert in PEM form, what a --destination-ca-file holds.
	PEM []byte
	key *ecdsa.PrivateKey
}

// NewCA returns a fresh certificate authority, valid from an hour ago for
// a day. It fails the test if a key cannot be made.
func NewCA(tb TB) *CA {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: "Herald test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("create the test CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &CA{Cert: cert, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}
}

// Pool returns a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Pair is a certificate and its private key.
type Pair struct {
	// CertPEM and KeyPEM are the certificate and its PKCS #8 key in PEM.
	CertPEM, KeyPEM []byte
	// TLS is the pair loaded for crypto/tls.
	TLS tls.Certificate
	// Leaf is the parsed certificate.
	Leaf *x509.Certificate
}

// Issue returns a certificate signed by ca with the common name cn, a
// random serial number, valid for a day, for both server and client
// authentication, naming hosts (IP addresses or DNS names) as its
// subject alternative names.
func (ca *CA) Issue(tb TB, cn string, hosts ...string) Pair {
	tb.Helper()
	return ca.IssueBetween(tb, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), cn, hosts...)
}

// IssueBetween is Issue with the certificate valid from notBefore to
// notAfter: an expired certificate, or one not valid yet.
func (ca *CA) IssueBetween(tb TB, notBefore, notAfter time.Time, cn string, hosts ...string) Pair {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatalf("issue a test certificate: %v", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	p := Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	if p.TLS, err = tls.X509KeyPair(p.CertPEM, p.KeyPEM); err != nil {
		tb.Fatal(err)
	}
	p.Leaf = p.TLS.Leaf
	return p
}

// ServerTLS returns a server configuration for a receiver on 127.0.0.1:
// a certificate from ca for 127.0.0.1 and ::1, and ca as the authority of
// client certificates, demanded as clientAuth says
// (tls.RequireAndVerifyClientCert for mutual TLS, tls.NoClientCert for
// plain TLS).
func (ca *CA) ServerTLS(tb TB, clientAuth tls.ClientAuthType) *tls.Config {
	tb.Helper()
	return &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(tb, "receiver", "127.0.0.1", "::1").TLS},
		ClientAuth:   clientAuth,
		ClientCAs:    ca.Pool(),
	}
}

// WriteFiles writes the pair as cert.pem and key.pem in dir, replacing
// what is there, and returns their paths.
func (p Pair) WriteFiles(tb TB, dir string) (certFile, keyFile string) {
	tb.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, p.CertPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, p.KeyPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}

func newKey(tb TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate a test key: %v", err)
	}
	return key
}

func serial(tb TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
