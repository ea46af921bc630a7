package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// Node is the edge of one edge-labelled node, as its agent runs it: it turns the control
// plane's EdgeConfigure into the edge's configuration file and keeps the edge container
// running from the agent's own binary, joined to the organizations' networks.
type Node struct {
	// Engine is the node's Docker Engine.
	Engine Engine
	// Dir holds the configuration file (mounted into the container).
	Dir string
	// Binary is the static agent binary the image is made from (default: the running one).
	Binary string
	// HTTPPort and HTTPSPort are the host ports the edge listens on (default 80 and 443).
	HTTPPort, HTTPSPort int

	mu    sync.Mutex
	image string
}

// Configure writes the configuration and makes sure the container runs with its networks.
// The configuration is written first: a container (re)started by it reads the new one.
func (n *Node) Configure(ctx context.Context, c *agentv1.EdgeConfigure) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	cfg := FromCommand(c)
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	if err := WriteConfig(n.Dir, cfg); err != nil {
		return err
	}
	if n.image == "" {
		bin := n.Binary
		if bin == "" {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("edge: find the agent binary: %w", err)
			}
			bin = exe
		}
		img, err := EnsureImage(ctx, n.Engine, bin)
		if err != nil {
			return err
		}
		n.image = img
	}
	dir, err := filepath.Abs(n.Dir)
	if err != nil {
		return err
	}
	if err := EnsureContainer(ctx, n.Engine, ContainerOptions{Image: n.image, ConfigDir: dir,
		HTTPPort: n.HTTPPort, HTTPSPort: n.HTTPSPort, Networks: c.GetNetworks()}); err != nil {
		return err
	}
	// The edge picks the file up on its own; challenges must be served before this command is
	// acknowledged, since the control plane then asks the ACME server to check them.
	return n.waitServed(ctx, c.GetChallenges())
}

// servedTimeout bounds the wait for the edge to serve new challenge answers.
const servedTimeout = 10 * time.Second

// waitServed waits until the edge answers every challenge on its HTTP port.
func (n *Node) waitServed(ctx context.Context, challenges []*agentv1.EdgeChallenge) error {
	port := n.HTTPPort
	if port == 0 {
		port = 80
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(servedTimeout)
	for _, ch := range challenges {
		url := fmt.Sprintf("http://127.0.0.1:%d%s", port, ch.GetPath())
		for !answers(ctx, client, url, ch.GetBody()) {
			if time.Now().After(deadline) {
				return fmt.Errorf("edge: %s is not served after %s", ch.GetPath(), servedTimeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func answers(ctx context.Context, client *http.Client, url, want string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return err == nil && resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == want
}

// FromCommand is the edge configuration an EdgeConfigure describes.
func FromCommand(c *agentv1.EdgeConfigure) Config {
	cfg := Config{}
	for _, r := range c.GetRoutes() {
		cfg.Routes = append(cfg.Routes, Route{Hosts: r.GetHosts(), Upstream: r.GetUpstream(),
			Suspended: r.GetSuspended(), HTTPSRedirect: r.GetHttpsRedirect()})
	}
	for _, crt := range c.GetCertificates() {
		cfg.Certificates = append(cfg.Certificates, Certificate{Hosts: crt.GetHosts(), CertPEM: crt.GetCertPem(), KeyPEM: crt.GetKeyPem()})
	}
	for _, ch := range c.GetChallenges() {
		switch {
		case strings.HasPrefix(ch.GetPath(), acmePrefix):
			cfg.Challenges = append(cfg.Challenges, Challenge{Token: strings.TrimPrefix(ch.GetPath(), acmePrefix), KeyAuthorization: ch.GetBody()})
		case strings.HasPrefix(ch.GetPath(), verificationPrefix):
			cfg.Verifications = append(cfg.Verifications, Challenge{Token: strings.TrimPrefix(ch.GetPath(), verificationPrefix), KeyAuthorization: ch.GetBody()})
		}
	}
	return cfg
}
