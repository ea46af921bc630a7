package enroll

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"skypanel/agent/internal/controlplanetest"
	"skypanel/agent/internal/identity"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/pki"
)

func facts() *agentv1.HostFacts {
	return &agentv1.HostFacts{Hostname: "node-a", AdvertiseAddr: "10.0.0.5", AgentVersion: "test"}
}

func openDir(t *testing.T) *identity.Dir {
	t.Helper()
	d, err := identity.OpenDir(filepath.Join(t.TempDir(), "agent"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func enroll(t *testing.T, cp *controlplanetest.Server, dir *identity.Dir, token string) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Enroll(ctx, Options{AgentURL: cp.URL, Token: token, Facts: facts(), Dir: dir,
		Labels: map[string]string{"disk": "ssd"}})
}

func TestEnrollWithTheRightPinStoresAWorkingIdentity(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{})
	dir := openDir(t)

	res, err := enroll(t, cp, dir, cp.Token())
	if err != nil {
		t.Fatal(err)
	}
	if res.NodeID != "node-1" || res.ClusterID != "cluster-1" || res.Role != "manager" {
		t.Fatalf("result = %+v", res)
	}
	fi, err := os.Stat(filepath.Join(dir.Path(), identity.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("node.key mode = %v, want 0600", fi.Mode().Perm())
	}
	id, err := dir.Load()
	if err != nil {
		t.Fatal(err)
	}
	if id.NodeID() != "node-1" || id.AgentURL() != cp.URL || id.AdvertiseAddr() != "10.0.0.5" {
		t.Fatalf("identity = %s %s %s", id.NodeID(), id.AgentURL(), id.AdvertiseAddr())
	}
	if pki.Pin(id.CA()) != cp.CA.Pin() {
		t.Fatal("stored CA is not the platform CA")
	}
	st, err := dir.LoadState()
	if err != nil {
		t.Fatal(err)
	}
	if st.RequestedLabels["disk"] != "ssd" || st.Labels["zone"] != "a" {
		t.Fatalf("state labels = %v requested = %v", st.Labels, st.RequestedLabels)
	}
}

func TestEnrollRefusesAControlPlaneWithAnotherCA(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{})
	other, err := pki.NewCA("someone else", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok := pki.ParseEnrollmentToken
	good, err := tok(cp.Token())
	if err != nil {
		t.Fatal(err)
	}
	wrong := pki.EnrollmentToken{CAPin: other.Pin(), Secret: good.Secret}.String()
	dir := openDir(t)

	_, err = enroll(t, cp, dir, wrong)
	if !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("err = %v, want the pin mismatch", err)
	}
	if !strings.Contains(err.Error(), "control plane CA does not match the token's pin (wrong control plane, or someone in between)") {
		t.Fatalf("message = %q", err)
	}
	if _, err := os.Stat(filepath.Join(dir.Path(), identity.KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key was left behind after a refused enrollment: %v", err)
	}
	if _, ok, _ := dir.Enrolled(); ok {
		t.Fatal("enrolled after a pin mismatch")
	}
}

func TestEnrollRefusesAChainWithoutThePinnedCA(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{OmitCAFromChain: true})
	_, err := enroll(t, cp, openDir(t), cp.Token())
	if !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("err = %v, want the pin mismatch", err)
	}
}

func TestEnrollShowsTheControlPlanesRefusal(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{})
	cp.RefuseEnrollment(connect.NewError(connect.CodeUnauthenticated, errors.New("the enrollment token expired")))
	_, err := enroll(t, cp, openDir(t), cp.Token())
	if err == nil || !strings.Contains(err.Error(), "refused: the enrollment token expired") {
		t.Fatalf("err = %v", err)
	}
}

func TestEnrollTwiceIsRefusedLocally(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{})
	dir := openDir(t)
	if _, err := enroll(t, cp, dir, cp.Token()); err != nil {
		t.Fatal(err)
	}
	_, err := enroll(t, cp, dir, cp.Token())
	if err == nil || !strings.Contains(err.Error(), "already enrolled as node node-1") {
		t.Fatalf("err = %v", err)
	}
}

func TestEnrollRejectsBadInputBeforeDialing(t *testing.T) {
	for _, tc := range []struct {
		name, url, token, want string
	}{
		{"plain http is refused", "http://127.0.0.1:1", "", "want https"},
		{"a malformed token is refused", "https://127.0.0.1:1", "nope", "malformed enrollment token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Enroll(context.Background(), Options{AgentURL: tc.url, Token: tc.token, Facts: facts(), Dir: openDir(t)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestVerifyPinnedWantsTheRightHostName(t *testing.T) {
	ca, err := pki.NewCA("ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := pki.NewNodeKey("x")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.SignServer(&key.PublicKey, []string{"cp.example"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPinned([]*x509.Certificate{leaf, ca.Cert}, ca.Pin(), "cp.example"); err != nil {
		t.Fatalf("right host: %v", err)
	}
	err = VerifyPinned([]*x509.Certificate{leaf, ca.Cert}, ca.Pin(), "evil.example")
	if err == nil || errors.Is(err, ErrPinMismatch) {
		t.Fatalf("wrong host: err = %v, want a host name error", err)
	}
}
