package renew

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"skypanel/agent/internal/controlplanetest"
	"skypanel/agent/internal/identity"
	"skypanel/agent/internal/link"
	"skypanel/agent/internal/session"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/pki"
)

func TestRenewAtIsBetweenHalfAndFourFifthsOfTheLifetime(t *testing.T) {
	nb := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := &x509.Certificate{NotBefore: nb, NotAfter: nb.Add(100 * time.Hour)}
	for _, tc := range []struct {
		r    float64
		want time.Duration
	}{
		{0, 50 * time.Hour},
		{0.5, 65 * time.Hour},
		{0.999999, 80*time.Hour - 360*time.Millisecond},
	} {
		if got := RenewAt(cert, tc.r).Sub(nb); got.Round(time.Second) != tc.want.Round(time.Second) {
			t.Errorf("RenewAt(r=%v) = start+%s, want start+%s", tc.r, got, tc.want)
		}
	}
}

type recorder struct{}

func (recorder) Execute(context.Context, *agentv1.Command) (string, error) { return "{}", nil }

// TestRenewalSwapsTheCertificateWithoutDroppingTheStream runs a session and a renewer whose
// certificate is already due: the renewed certificate is stored and presented on new calls,
// and the command stream that was open stays open.
func TestRenewalSwapsTheCertificateWithoutDroppingTheStream(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{Keepalive: 100 * time.Millisecond})
	// A 20-second certificate, backdated five minutes, is past 50 % of its life at once.
	id := cp.NewIdentity(t, "node-1", 20*time.Second)
	old := id.Certificate()
	client := link.New(cp.URL, id.TLSConfig())
	defer client.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := session.New(session.Options{Client: client, Acks: id, Executor: recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	cp.Wait("the stream to open", 10*time.Second, s.Connected)

	r, err := New(Options{Identity: id, Client: client, Renewed: client.Refresh})
	if err != nil {
		t.Fatal(err)
	}
	go r.Run(ctx)
	cp.Wait("a renewal", 10*time.Second, func() bool { return cp.Renewals() >= 1 })
	cp.Wait("the new certificate in use", 10*time.Second, func() bool { return id.Certificate().SerialNumber.Cmp(old.SerialNumber) != 0 })

	onDisk, err := os.ReadFile(filepath.Join(id.Dir().Path(), identity.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pki.ParseCertificatePEM(onDisk)
	if err != nil {
		t.Fatal(err)
	}
	if stored.SerialNumber.Cmp(id.Certificate().SerialNumber) != 0 {
		t.Fatal("node.crt does not hold the renewed certificate")
	}
	if stored.NotAfter.Sub(old.NotAfter) < time.Hour {
		t.Fatalf("renewed certificate expires %s, the old one %s", stored.NotAfter, old.NotAfter)
	}

	// A command acknowledged now goes over a new connection with the new certificate, while
	// the stream opened before the renewal carries it.
	cp.Queue(&agentv1.Command{Kind: &agentv1.Command_SwarmLeave{SwarmLeave: &agentv1.SwarmLeave{}}})
	cp.Wait("the ack", 10*time.Second, func() bool { return len(cp.Acks()) == 1 })
	if n := len(cp.Connects()); n != 1 {
		t.Fatalf("the stream was reopened %d times", n-1)
	}
	certs := cp.PresentedCertificates()
	if last := certs[len(certs)-1]; last.SerialNumber.Cmp(stored.SerialNumber) != 0 {
		t.Fatalf("the ack presented certificate %s, want the renewed %s", last.SerialNumber, stored.SerialNumber)
	}
}
