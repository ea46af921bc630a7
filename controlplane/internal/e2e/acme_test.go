package e2e_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/testenv"
)

// acmeServer is a local Pebble (Let's Encrypt's test ACME server) with its challenge test
// server as the DNS every name resolves through: the control plane's ownership checks ask it,
// and Pebble validates HTTP-01 at the addresses it gives.
type acmeServer struct {
	// Directory is the ACME directory URL; CAFile the PEM that Pebble's HTTPS is served with.
	Directory, CAFile string
	// DNS is the challenge test server's DNS address.
	DNS        string
	mgmt       string
	pebbleMgmt string
}

// startACME runs Pebble and pebble-challtestsrv (SKYPANEL_PEBBLE_BIN and
// SKYPANEL_CHALLTESTSRV_BIN, built by `make test`) on loopback.
func startACME(t testing.TB) *acmeServer {
	t.Helper()
	pebbleBin, challBin := os.Getenv("SKYPANEL_PEBBLE_BIN"), os.Getenv("SKYPANEL_CHALLTESTSRV_BIN")
	_, err1 := os.Stat(pebbleBin)
	_, err2 := os.Stat(challBin)
	testenv.Require(t, pebbleBin != "" && challBin != "" && err1 == nil && err2 == nil,
		"pebble and pebble-challtestsrv (SKYPANEL_PEBBLE_BIN, SKYPANEL_CHALLTESTSRV_BIN)")
	dir := t.TempDir()
	a := &acmeServer{DNS: freeLoopback(t), mgmt: freeLoopback(t)}
	run(t, challBin, nil, "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-dnsserver", a.DNS, "-management", a.mgmt, "-defaultIPv4", "", "-defaultIPv6", "")
	waitHTTP(t, "http://"+a.mgmt+"/")

	certFile, keyFile := selfSigned(t, dir)
	a.CAFile = certFile
	listen, mgmt := freeLoopback(t), freeLoopback(t)
	a.pebbleMgmt = mgmt
	cfg, err := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt, "certificate": certFile, "privateKey": keyFile,
		"httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false,
	}})
	require.NoError(t, err)
	cfgFile := filepath.Join(dir, "pebble.json")
	require.NoError(t, os.WriteFile(cfgFile, cfg, 0o600))
	run(t, pebbleBin, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		"-config", cfgFile, "-dnsserver", a.DNS)
	a.Directory = "https://" + listen + "/dir"
	waitHTTP(t, a.Directory)
	return a
}

// SetA points host at addr in the test DNS.
func (a *acmeServer) SetA(t testing.TB, host, addr string) {
	a.post(t, "/add-a", map[string]any{"host": host + ".", "addresses": []string{addr}})
}

// SetTXT sets a TXT record in the test DNS.
func (a *acmeServer) SetTXT(t testing.TB, name, value string) {
	a.post(t, "/set-txt", map[string]any{"host": name + ".", "value": value})
}

func (a *acmeServer) post(t testing.TB, path string, body any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post("http://"+a.mgmt+path, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "challtestsrv %s", path)
}

// Roots returns Pebble's root certificates: what issued certificates chain to.
func (a *acmeServer) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // Pebble's management API on loopback
	resp, err := client.Get("https://" + a.pebbleMgmt + "/roots/0")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(body), "pebble's root: %s", body)
	return pool
}

// run starts a test peer until the test ends; its output goes to the test log on failure.
func run(t testing.TB, bin string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), tail(out.String(), 40))
		}
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func waitHTTP(t testing.TB, url string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // readiness probe of a loopback test peer
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeLoopback(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// selfSigned writes a certificate for 127.0.0.1 and localhost, and its key.
func selfSigned(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile
}
