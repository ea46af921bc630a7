package identity

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"skypanel/shared/pki"
)

// enrolled writes a complete identity signed by a throwaway CA.
func enrolled(t *testing.T) (*Dir, *pki.CA) {
	t.Helper()
	ca, err := pki.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	key, csr, err := pki.NewNodeKey("h")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.SignNode(csr, pki.NodeCertificate{NodeID: "n1", Lifetime: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{d.WriteKey(key), d.WriteCA(ca.CertPEM()), d.WriteCertificate(pki.CertPEM(cert)),
		d.SaveState(State{NodeID: "n1", ClusterID: "c1", AgentURL: "https://cp:8443", AdvertiseAddr: "10.0.0.5"})} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return d, ca
}

func TestLoadReadsWhatEnrollmentWrote(t *testing.T) {
	d, _ := enrolled(t)
	id, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	if id.NodeID() != "n1" || id.ClusterID() != "c1" || id.AgentURL() != "https://cp:8443" || id.AdvertiseAddr() != "10.0.0.5" {
		t.Fatalf("identity = %+v", id.state)
	}
	fi, err := os.Stat(filepath.Join(d.Path(), KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("node.key mode %v", fi.Mode().Perm())
	}
}

func TestAnEmptyDirIsNotEnrolled(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("Load = %v, want ErrNotEnrolled", err)
	}
	if _, ok, err := d.Enrolled(); ok || err != nil {
		t.Fatalf("Enrolled = %v %v", ok, err)
	}
}

func TestTheLastAckSurvivesARestartAndNeverMovesBack(t *testing.T) {
	d, _ := enrolled(t)
	id, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := id.SaveAck(Ack{Seq: 7, OK: true, Output: `{"swarm_id":"x"}`}); err != nil {
		t.Fatal(err)
	}
	if err := id.SaveAck(Ack{Seq: 5, OK: true}); err != nil {
		t.Fatal(err)
	}
	again, err := d.Load() // as after a restart
	if err != nil {
		t.Fatal(err)
	}
	last, ack, err := again.LastAck()
	if err != nil {
		t.Fatal(err)
	}
	if last != 7 || ack == nil || ack.Output != `{"swarm_id":"x"}` {
		t.Fatalf("last = %d, ack = %+v", last, ack)
	}
	st, err := d.LoadState()
	if err != nil {
		t.Fatal(err)
	}
	if st.NodeID != "n1" || st.AgentURL == "" {
		t.Fatalf("saving an ack lost the rest of the state: %+v", st)
	}
	leftovers, _ := filepath.Glob(filepath.Join(d.Path(), ".*.tmp-*"))
	if len(leftovers) > 0 {
		t.Fatalf("temp files left: %v", leftovers)
	}
}

func TestAReplacedCertificateIsPresentedOnNewHandshakes(t *testing.T) {
	d, ca := enrolled(t)
	id, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg := id.TLSConfig()
	first, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509CSR(id)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := ca.SignNode(csr, pki.NodeCertificate{NodeID: "n1", Lifetime: 2 * time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := id.ReplaceCertificate(pki.CertPEM(renewed)); err != nil {
		t.Fatal(err)
	}
	second, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 || second.Leaf.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Fatal("the TLS config still presents the old certificate")
	}
	reloaded, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	if reloaded.Certificate().SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Fatal("node.crt does not hold the renewed certificate")
	}
}

func TestACertificateForAnotherKeyOrCAIsRefused(t *testing.T) {
	d, ca := enrolled(t)
	id, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	_, otherCSR, err := pki.NewNodeKey("other")
	if err != nil {
		t.Fatal(err)
	}
	foreignKey, err := ca.SignNode(otherCSR, pki.NodeCertificate{NodeID: "n1", Lifetime: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := id.ReplaceCertificate(pki.CertPEM(foreignKey)); err == nil {
		t.Fatal("a certificate for another key was accepted")
	}
	other, err := pki.NewCA("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509CSR(id)
	if err != nil {
		t.Fatal(err)
	}
	foreignCA, err := other.SignNode(csr, pki.NodeCertificate{NodeID: "n1", Lifetime: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := id.ReplaceCertificate(pki.CertPEM(foreignCA)); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
}

func x509CSR(id *Identity) ([]byte, error) {
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, id.Key())
}
