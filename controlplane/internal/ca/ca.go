// Package ca runs the platform's certificate authority inside the control plane: it makes the
// CA on first start (its key sealed under the master key), issues node certificates and
// records them for revocation, and serves the agent listener's own certificate.
package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/secrets"
	"skypanel/controlplane/internal/store"
	"skypanel/shared/pki"
)

// sealContext binds the sealed CA key to its place.
const sealContext = "platform-ca-key"

// serverCertLifetime is the agent listener certificate's lifetime; it is re-issued in memory
// well before it ends.
const serverCertLifetime = 30 * 24 * time.Hour

// Authority is the platform CA.
type Authority struct {
	ca    *pki.CA
	hosts []string
	now   func() time.Time

	mu     sync.Mutex
	server *tls.Certificate
	apps   map[string]HostCertificate
}

// Load reads the platform CA from the store, making and storing one on the first start.
// hosts are the names and addresses agents reach the agent listener by (its certificate's
// SANs).
func Load(ctx context.Context, st *store.Store, keys *secrets.Keyring, hosts []string) (*Authority, error) {
	stored, err := st.PlatformCA(ctx)
	if errors.Is(err, store.ErrNotFound) {
		fresh, err := pki.NewCA("SkyPanel platform CA", time.Now())
		if err != nil {
			return nil, fmt.Errorf("load ca: %w", err)
		}
		keyPEM, err := fresh.KeyPEM()
		if err != nil {
			return nil, fmt.Errorf("load ca: %w", err)
		}
		if _, err := st.InsertPlatformCA(ctx, store.PlatformCA{
			CertPEM: string(fresh.CertPEM()), KeySealed: keys.Seal(keyPEM, sealContext), Pin: fresh.Pin(),
		}); err != nil {
			return nil, fmt.Errorf("load ca: store: %w", err)
		}
		// Read back: another replica may have stored its CA first, and all must agree.
		stored, err = st.PlatformCA(ctx)
		if err != nil {
			return nil, fmt.Errorf("load ca: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	keyPEM, err := keys.Open(stored.KeySealed, sealContext)
	if err != nil {
		return nil, fmt.Errorf("load ca: the CA key does not open with this master key: %w", err)
	}
	c, err := pki.ParseCA([]byte(stored.CertPEM), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	return &Authority{ca: c, hosts: hosts, now: time.Now}, nil
}

// Pin is the CA's pin, which enrollment tokens carry.
func (a *Authority) Pin() string { return a.ca.Pin() }

// CertPEM is the CA certificate.
func (a *Authority) CertPEM() []byte { return a.ca.CertPEM() }

// Pool is a pool holding only the CA, for verifying node certificates.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.ca.Cert)
	return p
}

// IssueNode signs a node certificate from a CSR and records it (in q's transaction).
func (a *Authority) IssueNode(ctx context.Context, q *store.Queries, nodeID uuid.UUID, csrDER []byte, lifetime time.Duration) (*x509.Certificate, error) {
	cert, err := a.ca.SignNode(csrDER, pki.NodeCertificate{NodeID: nodeID.String(), Lifetime: lifetime}, a.now())
	if err != nil {
		return nil, err
	}
	if err := q.InsertNodeCertificate(ctx, Serial(cert), nodeID, cert.NotAfter); err != nil {
		return nil, fmt.Errorf("record node certificate: %w", err)
	}
	return cert, nil
}

// Serial is how certificates are keyed in the store: the serial number in hex.
func Serial(cert *x509.Certificate) string { return cert.SerialNumber.Text(16) }

// ServerTLS is the agent listener's TLS config: it presents a certificate from the platform
// CA (with the CA in the chain, so agents can check the pin) and asks for a client
// certificate without requiring one — Enroll comes without; the listener's middleware
// requires one for everything else.
func (a *Authority) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      a.Pool(),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return a.serverCert() },
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// serverCert returns the listener's certificate, issuing a new one when none exists or the
// current one is past two thirds of its life.
func (a *Authority) serverCert() (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.server != nil && now.Before(a.server.Leaf.NotBefore.Add(2*serverCertLifetime/3)) {
		return a.server, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("agent listener certificate: %w", err)
	}
	cert, err := a.ca.SignServer(&key.PublicKey, a.hosts, serverCertLifetime, now)
	if err != nil {
		return nil, fmt.Errorf("agent listener certificate: %w", err)
	}
	a.server = &tls.Certificate{Certificate: [][]byte{cert.Raw, a.ca.Cert.Raw}, PrivateKey: key, Leaf: cert}
	return a.server, nil
}

// Hosts lists the SANs for the agent listener: the host of the URL agents dial, the listen
// address's host, and loopback.
func Hosts(agentURL, agentListen string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	if u, err := url.Parse(agentURL); err == nil {
		add(u.Hostname())
	}
	if h, _, err := net.SplitHostPort(agentListen); err == nil && h != "0.0.0.0" && h != "::" {
		add(h)
	}
	add("localhost")
	add("127.0.0.1")
	return out
}

// HostCertificate is a serving certificate for hostnames, with its key, in PEM.
type HostCertificate struct {
	CertPEM, KeyPEM string
	NotAfter        time.Time
}

// AppsCertificate returns the certificate of the apps' default hostnames (*.domain), issued
// by the platform CA: what the edges serve for local development hostnames no public CA
// would certify. It is kept in memory and re-issued past two thirds of its life, so the
// edges' configuration stays the same between re-issues.
func (a *Authority) AppsCertificate(domain string) (HostCertificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if c, ok := a.apps[domain]; ok && now.Before(c.NotAfter.Add(-serverCertLifetime/3)) {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return HostCertificate{}, fmt.Errorf("apps certificate: %w", err)
	}
	cert, err := a.ca.SignServer(&key.PublicKey, []string{"*." + domain}, serverCertLifetime, now)
	if err != nil {
		return HostCertificate{}, fmt.Errorf("apps certificate: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return HostCertificate{}, fmt.Errorf("apps certificate: %w", err)
	}
	c := HostCertificate{
		CertPEM:  string(pki.CertPEM(cert)) + string(a.ca.CertPEM()),
		KeyPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})),
		NotAfter: cert.NotAfter,
	}
	if a.apps == nil {
		a.apps = map[string]HostCertificate{}
	}
	a.apps[domain] = c
	return c, nil
}
