// Package backoff holds the agent's retry delays: exponential growth with full jitter
// (a uniformly random delay between zero and the exponential bound), so that many agents
// reconnecting after a control-plane restart spread out instead of arriving together.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff with full jitter.
type Policy struct {
	// Base is the bound of the first retry's delay.
	Base time.Duration
	// Cap is the largest bound; delays never exceed it.
	Cap time.Duration
	// Rand returns a number in [0, 1); nil uses math/rand/v2. Tests fix it.
	Rand func() float64
}

// Bound returns the exponential bound for a retry: min(Cap, Base * 2^attempt).
func (p Policy) Bound(attempt int) time.Duration {
	if attempt < 0 {
		attempt = 0
	}
	b := p.Base
	for i := 0; i < attempt && b < p.Cap; i++ {
		b *= 2
	}
	if b > p.Cap || b <= 0 {
		b = p.Cap
	}
	return b
}

// Delay returns a random delay in [0, Bound(attempt)).
func (p Policy) Delay(attempt int) time.Duration {
	r := p.Rand
	if r == nil {
		r = rand.Float64
	}
	return time.Duration(r() * float64(p.Bound(attempt)))
}
