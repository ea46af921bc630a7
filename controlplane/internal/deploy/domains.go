package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"skypanel/controlplane/internal/store"
)

// Custom domains prove ownership one of two ways: a TXT record at
// _skypanel-challenge.<hostname> holding the domain's token, or the token served at
// http://<hostname>/.well-known/skypanel-challenge/<token> (by the platform's edge, once the
// hostname points at it).

// Verification methods, as stored (the API's VerificationMethod numbers).
const (
	MethodDNSTXT int16 = 1
	MethodHTTP   int16 = 2
)

// TXTRecordName is where the ownership record of a hostname lives.
func TXTRecordName(hostname string) string { return "_skypanel-challenge." + hostname }

// VerificationURL is where the HTTP proof of a domain is served.
func VerificationURL(hostname, token string) string {
	return "http://" + hostname + httpVerificationPrefix + token
}

// NewDomainToken makes a domain's ownership token.
func NewDomainToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "skypanel-" + hex.EncodeToString(b)
}

// Verifier checks ownership proofs. Resolver, when it has an address, is the DNS server used
// for both the TXT lookup and the HTTP check's name (tests point it at their own server).
type Verifier struct {
	// DNSServer is host:port of the DNS server to ask; empty uses the system's.
	DNSServer string
	// HTTPPort is the port of the HTTP check (80 unless a test says otherwise).
	HTTPPort int
}

func (v Verifier) resolver() *net.Resolver {
	if v.DNSServer == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, v.DNSServer)
	}}
}

// Verify checks a domain's proof and says what is wrong when it fails.
func (v Verifier) Verify(ctx context.Context, d store.Domain) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch d.Method {
	case MethodDNSTXT:
		name := TXTRecordName(d.Hostname)
		values, err := v.resolver().LookupTXT(ctx, name)
		if err != nil {
			return fmt.Errorf("no TXT record at %s yet (%v)", name, lookupReason(err))
		}
		for _, val := range values {
			if strings.TrimSpace(val) == d.Token {
				return nil
			}
		}
		return fmt.Errorf("the TXT record at %s does not hold the token %s", name, d.Token)
	case MethodHTTP:
		return v.verifyHTTP(ctx, d)
	}
	return fmt.Errorf("unknown verification method %d", d.Method)
}

func (v Verifier) verifyHTTP(ctx context.Context, d store.Domain) error {
	port := v.HTTPPort
	if port == 0 {
		port = 80
	}
	dialer := &net.Dialer{Resolver: v.resolver()}
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			return dialer.DialContext(ctx, network, net.JoinHostPort(host, fmt.Sprint(port)))
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	url := VerificationURL(d.Hostname, d.Token)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s did not answer: %v", url, lookupReason(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != d.Token {
		return fmt.Errorf("%s answered %d without the token: point the hostname at the platform's edge", url, resp.StatusCode)
	}
	return nil
}

// lookupReason shortens network errors for people.
func lookupReason(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return "no such name"
	}
	return err.Error()
}
