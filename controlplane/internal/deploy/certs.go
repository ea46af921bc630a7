package deploy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"skypanel/controlplane/internal/store"
)

// Certificates for custom domains come from an ACME directory (Let's Encrypt in production,
// Pebble in tests) by HTTP-01: the control plane orders, the edges of the domain's cluster
// serve the challenge answers it hands them, and the issued certificate (its key sealed) is
// pushed to the edges. A job per domain carries each order; renewals are queued 30 days
// before expiry.

// ACME configures certificate issuance.
type ACME struct {
	// DirectoryURL is the ACME directory; empty disables issuance.
	DirectoryURL string
	// Email is the account's contact.
	Email string
	// CAFile is a PEM bundle to trust for the directory's HTTPS (Pebble's); empty uses the
	// system's roots.
	CAFile string
}

// renewBefore is how long before expiry a certificate is renewed.
const renewBefore = 30 * 24 * time.Hour

// CertArgs is the job that gets (or renews) one domain's certificate.
type CertArgs struct {
	DomainID uuid.UUID `json:"domain_id"`
}

// Kind implements river.JobArgs.
func (CertArgs) Kind() string { return "domain.certificate" }

// InsertOpts: one open order per domain; failures retry with backoff for about a day.
func (CertArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 12, Queue: river.QueueDefault,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{rivertype.JobStateAvailable,
			rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled}}}
}

// CertWorker runs certificate orders.
type CertWorker struct {
	river.WorkerDefaults[CertArgs]
	d *Deployer
}

// CertWorker returns the job worker that gets domains their certificates.
func (d *Deployer) CertWorker() *CertWorker { return &CertWorker{d: d} }

// Timeout bounds one order (an order that takes longer is tried again).
func (w *CertWorker) Timeout(*river.Job[CertArgs]) time.Duration { return 45 * time.Second }

// Work orders the certificate; a failure is recorded on the domain and retried.
func (w *CertWorker) Work(ctx context.Context, job *river.Job[CertArgs]) error {
	err := w.d.obtain(ctx, job.Args.DomainID)
	if err != nil {
		w.d.logger.Warn("certificate order failed", "domain_id", job.Args.DomainID, "attempt", job.Attempt, "err", err)
		if serr := w.d.opts.Store.SetDomainCertificateState(ctx, job.Args.DomainID, "failed", err.Error()); serr != nil {
			return errors.Join(err, serr)
		}
	}
	return err
}

// RequestCertificate queues a certificate order for a domain, in the caller's transaction.
func (d *Deployer) RequestCertificate(ctx context.Context, q *store.Queries, domainID uuid.UUID) error {
	if d.opts.ACME.DirectoryURL == "" {
		return q.SetDomainCertificateState(ctx, domainID, "none", "")
	}
	if err := q.SetDomainCertificateState(ctx, domainID, "pending", ""); err != nil {
		return err
	}
	_, err := d.jobs.InsertTx(ctx, q.Tx(), CertArgs{DomainID: domainID}, nil)
	return err
}

// queueRenewals queues orders for verified domains without a certificate or near expiry.
func (d *Deployer) queueRenewals(ctx context.Context) error {
	if d.opts.ACME.DirectoryURL == "" {
		return nil
	}
	due, err := d.opts.Store.DomainsDueForCertificate(ctx, time.Now().Add(renewBefore))
	if err != nil {
		return err
	}
	for _, dom := range due {
		if dom.CertificateState == "failed" {
			continue // its job retries it
		}
		if err := d.opts.Store.InTx(ctx, func(q *store.Queries) error { return d.RequestCertificate(ctx, q, dom.ID) }); err != nil {
			return err
		}
	}
	return nil
}

// obtain orders and stores one domain's certificate.
func (d *Deployer) obtain(ctx context.Context, domainID uuid.UUID) error {
	dom, err := d.opts.Store.DomainByID(ctx, domainID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // removed meanwhile
	}
	if err != nil {
		return err
	}
	if dom.VerifiedAt == nil {
		return nil
	}
	client, err := d.acmeClient(ctx)
	if err != nil {
		return err
	}
	if err := client.Challenge.SetHTTP01Provider(&edgeChallenges{d: d, clusterID: dom.ClusterID}); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{dom.Hostname}, Bundle: true,
		PrivateKey: key, KeyType: certcrypto.EC256})
	if err != nil {
		return fmt.Errorf("ACME order for %s: %w", dom.Hostname, err)
	}
	leaf, err := firstCertificate(res.Certificate)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	if err := d.opts.Store.SetDomainCertificate(ctx, dom.ID, string(res.Certificate),
		d.opts.Keyring.Seal(keyPEM, DomainKeyContext(dom.ID)), leaf.NotAfter); err != nil {
		return err
	}
	d.logger.Info("certificate issued", "hostname", dom.Hostname, "expires", leaf.NotAfter)
	return d.SyncCluster(ctx, dom.ClusterID)
}

func firstCertificate(bundle []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(bundle)
	if block == nil {
		return nil, errors.New("the ACME server sent no certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// acmeUser is the control plane's ACME account.
type acmeUser struct {
	email string
	reg   *acme.ExtendedAccount
	key   crypto.Signer
}

func (u *acmeUser) GetEmail() string                       { return u.email }
func (u *acmeUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *acmeUser) GetPrivateKey() crypto.Signer           { return u.key }

// acmeContext binds the sealed account key to its directory.
func acmeContext(directory string) string { return "acme-account:" + directory }

// acmeClient returns a client with the stored account at the directory, registering one the
// first time.
func (d *Deployer) acmeClient(ctx context.Context) (*lego.Client, error) {
	cfg := d.opts.ACME
	httpClient, err := acmeHTTPClient(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	user := &acmeUser{email: cfg.Email}
	acct, err := d.opts.Store.ACMEAccountFor(ctx, cfg.DirectoryURL)
	switch {
	case err == nil:
		raw, err := d.opts.Keyring.Open(acct.KeySealed, acmeContext(cfg.DirectoryURL))
		if err != nil {
			return nil, fmt.Errorf("open ACME account key: %w", err)
		}
		if user.key, err = x509.ParseECPrivateKey(raw); err != nil {
			return nil, err
		}
		user.reg = &acme.ExtendedAccount{}
		if err := json.Unmarshal(acct.Registration, user.reg); err != nil {
			return nil, err
		}
	case errors.Is(err, store.ErrNotFound):
		if user.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	lc := lego.NewConfig(user)
	lc.CADirURL, lc.HTTPClient, lc.UserAgent = cfg.DirectoryURL, httpClient, "skypanel"
	client, err := lego.NewClient(lc)
	if err != nil {
		return nil, fmt.Errorf("ACME directory %s: %w", cfg.DirectoryURL, err)
	}
	if user.reg == nil {
		if user.reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
			return nil, fmt.Errorf("register at %s: %w", cfg.DirectoryURL, err)
		}
		der, err := x509.MarshalECPrivateKey(user.key.(*ecdsa.PrivateKey))
		if err != nil {
			return nil, err
		}
		reg, err := json.Marshal(user.reg)
		if err != nil {
			return nil, err
		}
		if err := d.opts.Store.PutACMEAccount(ctx, store.ACMEAccount{DirectoryURL: cfg.DirectoryURL, Email: cfg.Email,
			KeySealed: d.opts.Keyring.Seal(der, acmeContext(cfg.DirectoryURL)), Registration: reg}); err != nil {
			return nil, err
		}
	}
	return client, nil
}

func acmeHTTPClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ACME CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("ACME CA file %s holds no certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// edgeChallenges answers HTTP-01 challenges through the edges of one cluster.
type edgeChallenges struct {
	d         *Deployer
	clusterID uuid.UUID
}

// challengeApplyTimeout is how long the edges have to start serving an answer.
const challengeApplyTimeout = 20 * time.Second

// Present hands the answer to the cluster's edges and waits until they serve it.
func (c *edgeChallenges) Present(ctx context.Context, domain, token, keyAuth string) error {
	if err := c.d.opts.Store.PutACMEChallenge(ctx, store.ACMEChallenge{Token: token, KeyAuth: keyAuth, Hostname: domain}); err != nil {
		return err
	}
	sent, err := c.d.syncCluster(ctx, c.clusterID)
	if err != nil {
		return err
	}
	return c.d.waitApplied(ctx, sent, challengeApplyTimeout)
}

// CleanUp stops serving the answer.
func (c *edgeChallenges) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	if err := c.d.opts.Store.DeleteACMEChallenge(ctx, token); err != nil {
		return err
	}
	return c.d.SyncCluster(ctx, c.clusterID)
}
