// Package heraldtest is Herald's test kit, for Herald's own tests and for
// anyone testing an integration with Herald, as river's users import
// rivertest:
//
//   - Receiver: a webhook receiver on loopback (plain HTTP, TLS or mutual
//     TLS) that verifies every request's Standard Webhooks signature, records
//     what arrived, counts duplicates and signature failures, answers as it
//     is told and can be waited on.
//   - Clock: a settable clock to give Herald (Config.Now) instead of
//     sleeping.
//   - CA: a certificate authority that issues server and client
//     certificates, so TLS and mutual TLS are tested for real.
//
// Real stores for tests (a SQLite file in a temporary directory, a fresh
// PostgreSQL database) are in the subpackage storekit, which imports
// sqlstore; this package does not, so that sqlstore's own tests and
// storetest can use it.
//
// The package does not import package testing: its helpers take a TB,
// which *testing.T and *testing.B satisfy. The herald binary runs the
// Receiver in its demo and bench commands and so does not link testing.
package heraldtest

// TB is the part of testing.TB the kit uses. *testing.T, *testing.B and
// *testing.F satisfy it, as does any testing.TB.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}
