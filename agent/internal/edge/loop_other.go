//go:build !linux

package edge

import "net"

// loopGroup stands for the plain-HTTP event loops, which exist on Linux only
// (loop_linux.go); elsewhere a goroutine per connection serves plain HTTP.
type loopGroup struct{}

func (s *Server) startLoops(net.Listener) (*loopGroup, error) { return nil, nil }

func (g *loopGroup) stopAccepting() {}
func (g *loopGroup) drain()         {}
func (g *loopGroup) closeAll()      {}
func (g *loopGroup) stop()          {}
