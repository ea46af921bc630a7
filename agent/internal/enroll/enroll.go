// Package enroll holds a node's one-time enrollment: it checks the control plane against the
// CA pin in the enrollment token before sending anything secret, makes the node's key
// locally, trades the token and a CSR for a certificate, and stores the identity.
package enroll

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"connectrpc.com/connect"

	"skypanel/agent/internal/identity"
	"skypanel/agent/internal/link"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/shared/pki"
)

// ErrPinMismatch means the agent listener's certificate chain holds no CA with the token's
// pin, or its certificate is not signed by that CA.
var ErrPinMismatch = errors.New("control plane CA does not match the token's pin (wrong control plane, or someone in between)")

// Options say how to enroll.
type Options struct {
	// AgentURL is the control plane's agent listener, https://host:port.
	AgentURL string
	// Token is the enrollment token, spen.<pin>.<secret>.
	Token string
	// Facts describe this host; AdvertiseAddr is required.
	Facts *agentv1.HostFacts
	// Labels were asked for on the command line. The enrollment request has no field for
	// them, so they are recorded in state.json only.
	Labels map[string]string
	// Dir is the data directory the identity is written to.
	Dir *identity.Dir
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// Result is the enrolled identity.
type Result struct {
	NodeID    string
	ClusterID string
	Role      string
	Labels    map[string]string
}

// Enroll enrolls this node. It refuses to overwrite an existing identity.
func Enroll(ctx context.Context, opts Options) (Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Dir == nil {
		return Result{}, errors.New("enroll: no data directory")
	}
	if opts.Facts == nil || opts.Facts.AdvertiseAddr == "" {
		return Result{}, errors.New("enroll: the advertise address is required")
	}
	u, err := parseAgentURL(opts.AgentURL)
	if err != nil {
		return Result{}, err
	}
	tok, err := pki.ParseEnrollmentToken(opts.Token)
	if err != nil {
		return Result{}, fmt.Errorf("enroll: %w", err)
	}
	if st, ok, err := opts.Dir.Enrolled(); err != nil {
		return Result{}, fmt.Errorf("enroll: %w", err)
	} else if ok {
		return Result{}, fmt.Errorf("enroll: this node is already enrolled as node %s of cluster %s; to enroll it again, remove it in the control plane and delete %s",
			st.NodeID, st.ClusterID, opts.Dir.Path())
	}

	key, csr, err := pki.NewNodeKey(opts.Facts.Hostname)
	if err != nil {
		return Result{}, fmt.Errorf("enroll: %w", err)
	}
	if err := opts.Dir.WriteKey(key); err != nil {
		return Result{}, fmt.Errorf("enroll: %w", err)
	}
	done := false
	defer func() {
		if !done {
			if err := opts.Dir.RemoveKey(); err != nil {
				log.Warn("remove key after failed enrollment", "error", err)
			}
		}
	}()

	client := agentv1connect.NewAgentServiceClient(link.NewHTTPClient(PinnedTLSConfig(tok.CAPin, u.Hostname())), u.String())
	log.Info("enrolling", "agent_url", u.String(), "advertise_addr", opts.Facts.AdvertiseAddr)
	resp, err := client.Enroll(ctx, connect.NewRequest(&agentv1.EnrollRequest{
		Token:  tok.String(),
		CsrDer: csr,
		Facts:  opts.Facts,
	}))
	if err != nil {
		return Result{}, explain(err)
	}
	msg := resp.Msg

	ca, err := pki.ParseCertificatePEM([]byte(msg.CaPem))
	if err != nil {
		return Result{}, fmt.Errorf("enroll: the control plane's CA certificate: %w", err)
	}
	if pki.Pin(ca) != tok.CAPin {
		return Result{}, fmt.Errorf("enroll: the CA certificate the control plane returned does not match the token's pin")
	}
	cert, err := identity.CheckCertificate([]byte(msg.CertificatePem), key, ca)
	if err != nil {
		return Result{}, fmt.Errorf("enroll: %w", err)
	}
	if id, err := pki.NodeID(cert.Leaf); err != nil || id != msg.NodeId {
		return Result{}, fmt.Errorf("enroll: the certificate names node %q, the response node %q", id, msg.NodeId)
	}
	if err := opts.Dir.WriteCA([]byte(msg.CaPem)); err != nil {
		return Result{}, fmt.Errorf("enroll: %w", err)
	}
	if err := opts.Dir.WriteCertificate([]byte(msg.CertificatePem)); err != nil {
		return Result{}, fmt.Errorf("enroll: %w", err)
	}
	// state.json last: its node id is what marks the enrollment complete.
	res := Result{NodeID: msg.NodeId, ClusterID: msg.ClusterId, Role: RoleName(msg.Role), Labels: msg.Labels}
	if err := opts.Dir.SaveState(identity.State{
		NodeID:          res.NodeID,
		ClusterID:       res.ClusterID,
		AgentURL:        u.String(),
		AdvertiseAddr:   opts.Facts.AdvertiseAddr,
		Role:            res.Role,
		Labels:          res.Labels,
		RequestedLabels: opts.Labels,
	}); err != nil {
		return Result{}, fmt.Errorf("enroll: %w", err)
	}
	done = true
	log.Info("enrolled", "node_id", res.NodeID, "cluster_id", res.ClusterID, "role", res.Role,
		"certificate_expires", cert.Leaf.NotAfter)
	return res, nil
}

// RoleName names a role the way Docker does.
func RoleName(r agentv1.NodeRole) string {
	switch r {
	case agentv1.NodeRole_NODE_ROLE_MANAGER:
		return "manager"
	case agentv1.NodeRole_NODE_ROLE_WORKER:
		return "worker"
	}
	return ""
}

func parseAgentURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil {
		return nil, fmt.Errorf("enroll: agent url: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("enroll: agent url %q: want https://host[:port]", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("enroll: agent url %q: want no user, query or fragment", s)
	}
	return u, nil
}

// explain turns an Enroll failure into a message for the operator.
func explain(err error) error {
	if errors.Is(err, ErrPinMismatch) {
		return fmt.Errorf("enroll: %w", ErrPinMismatch)
	}
	var cerr *connect.Error
	if errors.As(err, &cerr) {
		switch cerr.Code() {
		case connect.CodeUnauthenticated, connect.CodePermissionDenied, connect.CodeInvalidArgument,
			connect.CodeNotFound, connect.CodeFailedPrecondition, connect.CodeResourceExhausted,
			connect.CodeAlreadyExists:
			// The control plane's own words: used, expired or revoked token, bad request.
			return fmt.Errorf("enroll: the control plane refused: %s", cerr.Message())
		}
	}
	return fmt.Errorf("enroll: call the control plane: %w", err)
}

// PinnedTLSConfig returns a TLS configuration that trusts a server only if its presented
// chain contains a certificate whose pki.Pin is pin and the leaf verifies against that
// certificate for serverAuth and serverName. The usual verification against system roots
// is off: the platform CA is private, and the pin is the trust anchor.
func PinnedTLSConfig(pin, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return VerifyPinned(cs.PeerCertificates, pin, serverName)
		},
	}
}

// VerifyPinned checks a presented chain (leaf first) against a CA pin.
func VerifyPinned(chain []*x509.Certificate, pin, serverName string) error {
	if len(chain) == 0 {
		return ErrPinMismatch
	}
	var ca *x509.Certificate
	for _, c := range chain {
		if pki.Pin(c) == pin {
			ca = c
			break
		}
	}
	if ca == nil {
		return ErrPinMismatch
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != ca {
			inter.AddCert(c)
		}
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       serverName,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &unknown):
		return fmt.Errorf("%w: the certificate is not signed by the pinned CA", ErrPinMismatch)
	case errors.As(err, &host):
		return fmt.Errorf("verify control plane certificate: %w (use the agent URL the control plane's certificate names)", err)
	default:
		return fmt.Errorf("verify control plane certificate: %w", err)
	}
}
