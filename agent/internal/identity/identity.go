// Package identity holds a node's enrolled identity on disk: its private key (never sent),
// its certificate, the platform CA and the agent's small state file, plus the mutual-TLS
// configuration built from them. Every file is written atomically (temp file, fsync, rename,
// fsync of the directory) so a crash never leaves half a key or a torn state file.
package identity

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"skypanel/shared/pki"
)

// DefaultDir is where the agent keeps its identity unless --data-dir says otherwise.
const DefaultDir = "/var/lib/skypanel-agent"

// File names inside the data directory.
const (
	KeyFile   = "node.key"
	CertFile  = "node.crt"
	CAFile    = "ca.crt"
	StateFile = "state.json"
)

// ErrNotEnrolled means the data directory holds no complete identity yet.
var ErrNotEnrolled = errors.New("this node is not enrolled (run `skypanel-agent enroll` first)")

// Ack is the outcome of the last command the agent acknowledged. It is kept so that the
// agent can repeat the acknowledgement, output included, when the control plane did not
// receive it (for example the join tokens of a swarm_init).
type Ack struct {
	Seq    int64  `json:"seq"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Output string `json:"output,omitempty"`
}

// State is the agent's small persistent state (state.json).
type State struct {
	NodeID    string `json:"node_id"`
	ClusterID string `json:"cluster_id"`
	AgentURL  string `json:"agent_url"`
	// LastAckedSeq is the highest command sequence the agent acknowledged; it is written
	// before the acknowledgement is sent.
	LastAckedSeq int64 `json:"last_acked_seq"`
	// LastAck repeats the acknowledgement of LastAckedSeq (see Ack).
	LastAck *Ack `json:"last_ack,omitempty"`
	// AdvertiseAddr is the address other nodes reach this one at (Swarm and gossip).
	AdvertiseAddr string `json:"advertise_addr,omitempty"`
	// Role is the node's Swarm role as enrollment assigned it ("manager" or "worker").
	Role string `json:"role,omitempty"`
	// Labels are the node labels the control plane returned at enrollment.
	Labels map[string]string `json:"labels,omitempty"`
	// RequestedLabels are the labels given to `enroll --labels`; the enrollment API has no
	// field for them yet, so they are only recorded here.
	RequestedLabels map[string]string `json:"requested_labels,omitempty"`
}

// Dir is a data directory.
type Dir struct {
	path string
	mu   sync.Mutex // serializes state.json read-modify-write
}

// OpenDir returns the data directory at path, creating it (0700) if needed.
func OpenDir(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("open data dir: empty path")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("open data dir: %w", err)
	}
	return &Dir{path: path}, nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

func (d *Dir) file(name string) string { return filepath.Join(d.path, name) }

// Enrolled reports whether state.json names a node.
func (d *Dir) Enrolled() (State, bool, error) {
	st, err := d.LoadState()
	if errors.Is(err, ErrNotEnrolled) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, err
	}
	return st, st.NodeID != "", nil
}

// WriteKey stores the node's private key (PKCS#8 PEM, mode 0600).
func (d *Dir) WriteKey(key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("write node key: %w", err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := WriteFileAtomic(d.file(KeyFile), b, 0o600); err != nil {
		return fmt.Errorf("write node key: %w", err)
	}
	return nil
}

// RemoveKey deletes the private key (after a failed enrollment).
func (d *Dir) RemoveKey() error {
	if err := os.Remove(d.file(KeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove node key: %w", err)
	}
	return nil
}

// LoadKey reads the node's private key.
func (d *Dir) LoadKey() (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(d.file(KeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, fmt.Errorf("load node key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("load node key: %s is not a PEM private key", d.file(KeyFile))
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load node key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("load node key: not an ECDSA key")
	}
	return key, nil
}

// WriteCertificate stores the node certificate (PEM).
func (d *Dir) WriteCertificate(certPEM []byte) error {
	if err := WriteFileAtomic(d.file(CertFile), certPEM, 0o644); err != nil {
		return fmt.Errorf("write node certificate: %w", err)
	}
	return nil
}

// WriteCA stores the platform CA certificate (PEM).
func (d *Dir) WriteCA(caPEM []byte) error {
	if err := WriteFileAtomic(d.file(CAFile), caPEM, 0o644); err != nil {
		return fmt.Errorf("write ca certificate: %w", err)
	}
	return nil
}

// LoadState reads state.json.
func (d *Dir) LoadState() (State, error) {
	b, err := os.ReadFile(d.file(StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, ErrNotEnrolled
	}
	if err != nil {
		return State{}, fmt.Errorf("load state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("load state: %s: %w", d.file(StateFile), err)
	}
	return st, nil
}

// SaveState writes state.json.
func (d *Dir) SaveState(st State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.saveState(st)
}

func (d *Dir) saveState(st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := WriteFileAtomic(d.file(StateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// UpdateState applies f to the stored state and writes the result.
func (d *Dir) UpdateState(f func(*State)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.LoadState()
	if err != nil {
		return err
	}
	f(&st)
	return d.saveState(st)
}

// Load reads the complete identity: key, certificate, CA and state.
func (d *Dir) Load() (*Identity, error) {
	st, err := d.LoadState()
	if err != nil {
		return nil, err
	}
	if st.NodeID == "" || st.AgentURL == "" {
		return nil, fmt.Errorf("load identity: %s names no node or agent url: %w", d.file(StateFile), ErrNotEnrolled)
	}
	key, err := d.LoadKey()
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(d.file(CAFile))
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	ca, err := pki.ParseCertificatePEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("load identity: %s: %w", d.file(CAFile), err)
	}
	certPEM, err := os.ReadFile(d.file(CertFile))
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	id := &Identity{dir: d, key: key, ca: ca, state: st}
	cert, err := id.parseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	id.cert.Store(cert)
	return id, nil
}

// Identity is a loaded identity. Its certificate can be replaced while connections use it.
type Identity struct {
	dir   *Dir
	key   *ecdsa.PrivateKey
	ca    *x509.Certificate
	state State // as loaded; LastAckedSeq is read through Dir
	cert  atomic.Pointer[tls.Certificate]
}

// Dir returns the data directory the identity lives in.
func (id *Identity) Dir() *Dir { return id.dir }

// NodeID returns the node's id.
func (id *Identity) NodeID() string { return id.state.NodeID }

// ClusterID returns the node's cluster.
func (id *Identity) ClusterID() string { return id.state.ClusterID }

// AgentURL returns the control plane's agent listener URL.
func (id *Identity) AgentURL() string { return id.state.AgentURL }

// AdvertiseAddr returns the address given at enrollment.
func (id *Identity) AdvertiseAddr() string { return id.state.AdvertiseAddr }

// Key returns the node's private key.
func (id *Identity) Key() *ecdsa.PrivateKey { return id.key }

// CA returns the platform CA certificate.
func (id *Identity) CA() *x509.Certificate { return id.ca }

// Certificate returns the current node certificate.
func (id *Identity) Certificate() *x509.Certificate { return id.cert.Load().Leaf }

// parseCertificate checks that certPEM is a client certificate for this key, issued by the
// CA, and returns it ready for TLS.
func (id *Identity) parseCertificate(certPEM []byte) (*tls.Certificate, error) {
	return CheckCertificate(certPEM, id.key, id.ca)
}

// CheckCertificate parses a node certificate and checks it belongs to key and chains to ca
// for client authentication.
func CheckCertificate(certPEM []byte, key *ecdsa.PrivateKey, ca *x509.Certificate) (*tls.Certificate, error) {
	leaf, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, errors.New("node certificate: it is not for this node's key")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2), // chain, not clock
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// ReplaceCertificate stores a renewed certificate and makes new TLS connections present it.
// Connections already open keep theirs.
func (id *Identity) ReplaceCertificate(certPEM []byte) error {
	cert, err := id.parseCertificate(certPEM)
	if err != nil {
		return fmt.Errorf("replace certificate: %w", err)
	}
	if err := id.dir.WriteCertificate(certPEM); err != nil {
		return fmt.Errorf("replace certificate: %w", err)
	}
	id.cert.Store(cert)
	return nil
}

// TLSConfig returns the mutual-TLS configuration for the agent URL: the node certificate as
// the client certificate (read at every handshake, so a renewal applies to new connections)
// and the stored platform CA as the only root.
func (id *Identity) TLSConfig() *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(id.ca)
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return id.cert.Load(), nil
		},
	}
}

// LastAck returns the last acknowledged command sequence and its stored acknowledgement.
func (id *Identity) LastAck() (int64, *Ack, error) {
	st, err := id.dir.LoadState()
	if err != nil {
		return 0, nil, err
	}
	return st.LastAckedSeq, st.LastAck, nil
}

// SaveAck records an acknowledgement durably before it is sent.
func (id *Identity) SaveAck(a Ack) error {
	return id.dir.UpdateState(func(st *State) {
		if a.Seq < st.LastAckedSeq {
			return // never move backwards
		}
		ack := a
		st.LastAckedSeq = a.Seq
		st.LastAck = &ack
	})
}

// WriteFileAtomic writes b to path so that readers see either the old or the new content:
// it writes a temp file in the same directory, fsyncs it, renames it over path and fsyncs
// the directory.
func WriteFileAtomic(path string, b []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
