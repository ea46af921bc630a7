// Package renew holds the renewal of the node certificate. The certificate is short-lived
// (days); the agent renews it over mutual TLS at a random point between 50 % and 80 % of its
// lifetime, so a fleet enrolled together does not renew together, and retries with backoff
// when the control plane is away.
//
// Renewal keeps the node's key and sends a new CSR signed by it: the key never leaves the
// node, TLS 1.3's ephemeral key exchange already gives each connection forward secrecy, and
// keeping one key means node.key and node.crt never have to change together atomically.
// The new certificate is swapped in for new connections; the open command stream is not
// dropped (it reopens by itself shortly before the old certificate expires).
package renew

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"skypanel/agent/internal/backoff"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
)

// Identity is the node identity whose certificate is renewed (identity.Identity is one).
type Identity interface {
	NodeID() string
	Key() *ecdsa.PrivateKey
	Certificate() *x509.Certificate
	ReplaceCertificate(certPEM []byte) error
}

// ClientSource returns the AgentService client to call now (link.Client is one).
type ClientSource interface {
	API() agentv1connect.AgentServiceClient
}

// Options configure a Renewer.
type Options struct {
	Identity Identity
	Client   ClientSource
	// Renewed runs after a new certificate is in place (link.Client.Refresh, so that new
	// calls present it).
	Renewed func()
	// Backoff spaces retries after a failed renewal (default base 10 s, cap 10 min).
	Backoff backoff.Policy
	// Rand returns a number in [0, 1) to pick the renewal point; nil uses math/rand/v2.
	Rand   func() float64
	Logger *slog.Logger
	// Metrics registers the renewer's metrics; nil registers none.
	Metrics prometheus.Registerer
}

// Renewer renews the node certificate.
type Renewer struct {
	opts Options
	log  *slog.Logger

	mExpiry   prometheus.Gauge
	mRenewals *prometheus.CounterVec
}

// New returns a Renewer.
func New(opts Options) (*Renewer, error) {
	if opts.Identity == nil || opts.Client == nil {
		return nil, errors.New("renew: identity and client are required")
	}
	if opts.Backoff.Base == 0 {
		opts.Backoff = backoff.Policy{Base: 10 * time.Second, Cap: 10 * time.Minute}
	}
	if opts.Rand == nil {
		opts.Rand = mrand.Float64
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Renewer{
		opts: opts, log: logger,
		mExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skypanel_agent_certificate_expiry_timestamp_seconds", Help: "When the node certificate in use expires (Unix time)."}),
		mRenewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skypanel_agent_certificate_renewals_total", Help: "Certificate renewals by result (ok, error)."}, []string{"result"}),
	}
	if opts.Metrics != nil {
		for _, c := range []prometheus.Collector{r.mExpiry, r.mRenewals} {
			if err := opts.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("renew: register metrics: %w", err)
			}
		}
	}
	return r, nil
}

// RenewAt is when to renew cert: at 50 % + r·30 % of its lifetime, r in [0, 1).
func RenewAt(cert *x509.Certificate, r float64) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(time.Duration((0.5 + 0.3*r) * float64(life)))
}

// Run renews the certificate whenever it is due, until ctx ends.
func (r *Renewer) Run(ctx context.Context) error {
	for {
		cert := r.opts.Identity.Certificate()
		r.mExpiry.Set(float64(cert.NotAfter.Unix()))
		at := RenewAt(cert, r.opts.Rand())
		r.log.Info("certificate renewal scheduled", "renew_at", at.UTC().Format(time.RFC3339), "expires", cert.NotAfter.UTC().Format(time.RFC3339))
		if !sleepUntil(ctx, at) {
			return nil
		}
		for attempt := 0; ; attempt++ {
			err := r.RenewNow(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			delay := max(r.opts.Backoff.Delay(attempt), time.Second)
			refused := connect.CodeOf(err) == connect.CodeUnauthenticated || connect.CodeOf(err) == connect.CodePermissionDenied
			switch {
			case time.Now().After(cert.NotAfter):
				r.log.Error("the node certificate expired and could not be renewed; if this persists, enroll the node again",
					"error", err, "retry_in", delay.String())
			case refused:
				delay = r.opts.Backoff.Cap
				r.log.Error("the control plane refused to renew the certificate (node removed or certificate revoked)",
					"error", err, "retry_in", delay.String())
			default:
				r.log.Warn("certificate renewal failed; retrying", "error", err, "retry_in", delay.String(),
					"expires", cert.NotAfter.UTC().Format(time.RFC3339))
			}
			if !sleepUntil(ctx, time.Now().Add(delay)) {
				return nil
			}
		}
	}
}

// RenewNow renews the certificate once.
func (r *Renewer) RenewNow(ctx context.Context) error {
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: r.opts.Identity.NodeID()},
	}, r.opts.Identity.Key())
	if err != nil {
		return fmt.Errorf("renew certificate: csr: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := r.opts.Client.API().Renew(cctx, connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr}))
	if err != nil {
		r.mRenewals.WithLabelValues("error").Inc()
		return fmt.Errorf("renew certificate: %w", err)
	}
	if err := r.opts.Identity.ReplaceCertificate([]byte(resp.Msg.GetCertificatePem())); err != nil {
		r.mRenewals.WithLabelValues("error").Inc()
		return fmt.Errorf("renew certificate: %w", err)
	}
	r.mRenewals.WithLabelValues("ok").Inc()
	cert := r.opts.Identity.Certificate()
	r.mExpiry.Set(float64(cert.NotAfter.Unix()))
	r.log.Info("certificate renewed", "expires", cert.NotAfter.UTC().Format(time.RFC3339))
	if r.opts.Renewed != nil {
		r.opts.Renewed()
	}
	return nil
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
