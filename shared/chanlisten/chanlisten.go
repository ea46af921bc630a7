// Package chanlisten is a net.Listener whose connections come from a channel. A server that
// accepts connections and shakes hands with them itself (the edge, the control plane's agent
// listener) hands some of them to an http.Server through one; closing it stops that server
// without touching the real listener.
package chanlisten

import (
	"net"
	"sync"
)

// Listener hands out the connections sent on its channel until it is closed.
type Listener struct {
	conns <-chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

// New returns a listener taking connections from conns; addr is what Addr reports.
func New(conns <-chan net.Conn, addr net.Addr) *Listener {
	return &Listener{conns: conns, done: make(chan struct{}), addr: addr}
}

// Accept returns the next connection, or net.ErrClosed once the listener is closed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case <-l.done:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept return net.ErrClosed; the channel and its connections are the sender's.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Done is closed when the listener is: a sender stops waiting on it.
func (l *Listener) Done() <-chan struct{} { return l.done }

// Addr is the address given to New.
func (l *Listener) Addr() net.Addr { return l.addr }
