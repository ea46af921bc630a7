// Package link holds the agent's HTTP/2 connection to the control plane's agent listener and
// the generated AgentService client on top of it. The connection can be refreshed after a
// certificate renewal: new calls then go over a new TLS connection that presents the new
// certificate, while a stream already open on the old connection keeps running.
package link

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
)

// NewHTTPClient returns an HTTP/2-only client over TLS with tlsConf. HTTP/2 pings detect a
// dead connection (no frame for 30 s, no ping answer in 15 s) below the application's own
// keepalive.
func NewHTTPClient(tlsConf *tls.Config) *http.Client {
	return &http.Client{Transport: newTransport(tlsConf)}
}

func newTransport(tlsConf *tls.Config) *http2.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http2.Transport{
		TLSClientConfig: tlsConf,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			d := &tls.Dialer{NetDialer: dialer, Config: cfg}
			return d.DialContext(ctx, network, addr)
		},
		ReadIdleTimeout: 30 * time.Second,
		PingTimeout:     15 * time.Second,
		// No HPACK dynamic table for what the agent sends: its few headers go as literals
		// (some 150 bytes more a request), and the control plane keeps no table of them for
		// each of its thousands of connections (docs/benchmarks.md, node agents).
		MaxEncoderHeaderTableSize: 1,
		// An old connection left to a stream after Refresh closes by itself once idle.
		IdleConnTimeout: 90 * time.Second,
	}
}

// Client is the AgentService client of an enrolled node.
type Client struct {
	url  string
	tls  *tls.Config
	opts []connect.ClientOption

	mu  sync.Mutex
	cur *conn
}

type conn struct {
	tr  *http2.Transport
	api agentv1connect.AgentServiceClient
}

// New returns a client for the agent listener at url. tlsConf is the node's mutual-TLS
// configuration (identity.Identity.TLSConfig).
func New(url string, tlsConf *tls.Config, opts ...connect.ClientOption) *Client {
	c := &Client{url: url, tls: tlsConf, opts: opts}
	c.cur = c.dial()
	return c
}

func (c *Client) dial() *conn {
	tr := newTransport(c.tls)
	return &conn{tr: tr, api: agentv1connect.NewAgentServiceClient(&http.Client{Transport: tr}, c.url, c.opts...)}
}

// API returns the client to call now.
func (c *Client) API() agentv1connect.AgentServiceClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.api
}

// Refresh makes later calls use a new connection (which presents the current certificate).
// The previous connection closes once its open streams end and it has been idle a while.
func (c *Client) Refresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.cur
	c.cur = c.dial()
	prev.tr.CloseIdleConnections()
}

// Close closes idle connections (streams end with their contexts).
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur.tr.CloseIdleConnections()
}
