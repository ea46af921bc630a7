package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNodeCertificatesVerifyAgainstTheCAAndNameTheNode(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test platform", now)
	require.NoError(t, err)
	key, csr, err := NewNodeKey("node-1.example")
	require.NoError(t, err)

	cert, err := ca.SignNode(csr, NodeCertificate{NodeID: "n-123", Lifetime: 72 * time.Hour}, now)
	require.NoError(t, err)
	require.True(t, key.PublicKey.Equal(cert.PublicKey), "the certificate is for the node's own key")
	id, err := NodeID(cert)
	require.NoError(t, err)
	require.Equal(t, "n-123", id)

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now})
	require.NoError(t, err)
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now.Add(73 * time.Hour)})
	require.Error(t, err, "an expired certificate does not verify")

	other, err := NewCA("another platform", now)
	require.NoError(t, err)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.Cert)
	_, err = cert.Verify(x509.VerifyOptions{Roots: otherRoots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now})
	require.Error(t, err, "another CA's nodes are strangers")
}

func TestSigningRefusesLongLifetimesForeignKeysAndBadCSRs(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test", now)
	require.NoError(t, err)
	_, csr, err := NewNodeKey("n")
	require.NoError(t, err)
	_, err = ca.SignNode(csr, NodeCertificate{NodeID: "n", Lifetime: 8 * 24 * time.Hour}, now)
	require.ErrorContains(t, err, "lifetime")
	_, err = ca.SignNode(csr, NodeCertificate{NodeID: "a/b", Lifetime: time.Hour}, now)
	require.ErrorContains(t, err, "node id")
	_, err = ca.SignNode([]byte("not a csr"), NodeCertificate{NodeID: "n", Lifetime: time.Hour}, now)
	require.Error(t, err)

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	csr384, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, p384)
	require.NoError(t, err)
	_, err = ca.SignNode(csr384, NodeCertificate{NodeID: "n", Lifetime: time.Hour}, now)
	require.ErrorContains(t, err, "P-256")
}

func TestTheCARoundTripsThroughPEMWithTheSamePin(t *testing.T) {
	ca, err := NewCA("test", time.Now())
	require.NoError(t, err)
	keyPEM, err := ca.KeyPEM()
	require.NoError(t, err)
	back, err := ParseCA(ca.CertPEM(), keyPEM)
	require.NoError(t, err)
	require.Equal(t, ca.Pin(), back.Pin())
	require.Len(t, ca.Pin(), 64)

	other, err := NewCA("other", time.Now())
	require.NoError(t, err)
	otherKey, err := other.KeyPEM()
	require.NoError(t, err)
	_, err = ParseCA(ca.CertPEM(), otherKey)
	require.ErrorContains(t, err, "does not belong")
}

func TestEnrollmentTokensRoundTripAndCarryThePin(t *testing.T) {
	ca, err := NewCA("test", time.Now())
	require.NoError(t, err)
	tok := NewEnrollmentToken(ca.Pin())
	parsed, err := ParseEnrollmentToken(tok.String())
	require.NoError(t, err)
	require.Equal(t, tok, parsed)
	require.Equal(t, ca.Pin(), parsed.CAPin)
	require.NotEqual(t, NewEnrollmentToken(ca.Pin()).Secret, tok.Secret)

	for _, bad := range []string{"", "spen", "spen.abc.def", strings.Replace(tok.String(), "spen", "spak", 1),
		"spen." + strings.ToUpper(ca.Pin()) + "." + tok.Secret, tok.String() + "x"} {
		_, err := ParseEnrollmentToken(bad)
		require.ErrorIs(t, err, ErrMalformedEnrollmentToken, "%q", bad)
	}
}

func FuzzParseEnrollmentToken(f *testing.F) {
	f.Add(NewEnrollmentToken(strings.Repeat("ab", 32)).String())
	f.Add("spen..")
	f.Add("spen." + strings.Repeat("0", 64) + "." + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseEnrollmentToken(s)
		if err != nil {
			return
		}
		again, err := ParseEnrollmentToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("a parsed token does not round-trip: %q", s)
		}
	})
}
