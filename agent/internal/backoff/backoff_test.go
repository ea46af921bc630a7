package backoff

import (
	"testing"
	"time"
)

func TestBoundDoublesUntilTheCap(t *testing.T) {
	p := Policy{Base: time.Second, Cap: 30 * time.Second}
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{-1, time.Second},
		{0, time.Second},
		{1, 2 * time.Second},
		{2, 4 * time.Second},
		{4, 16 * time.Second},
		{5, 30 * time.Second},
		{6, 30 * time.Second},
		{1000, 30 * time.Second},
	} {
		if got := p.Bound(tc.attempt); got != tc.want {
			t.Errorf("Bound(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}

func TestDelayIsFullJitterBelowTheBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    float64
		want time.Duration
	}{
		{"zero jitter waits nothing", 0, 0},
		{"half jitter waits half the bound", 0.5, 4 * time.Second},
		{"almost full jitter stays below the bound", 0.999, 7992 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{Base: time.Second, Cap: 30 * time.Second, Rand: func() float64 { return tc.r }}
			if got := p.Delay(3); got != tc.want {
				t.Fatalf("Delay(3) = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDelayWithRealRandomnessStaysInRange(t *testing.T) {
	p := Policy{Base: time.Second, Cap: 30 * time.Second}
	for i := 0; i < 1000; i++ {
		if d := p.Delay(10); d < 0 || d >= 30*time.Second {
			t.Fatalf("Delay(10) = %s, want within [0, 30s)", d)
		}
	}
}
