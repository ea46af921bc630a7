package workload

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNormalizeHostname(t *testing.T) {
	tests := []struct {
		name, in, want string
		wildcard       bool
	}{
		{"a plain name is kept", "app.example.com", "app.example.com", false},
		{"upper case is lowered", "App.EXAMPLE.com", "app.example.com", false},
		{"one trailing dot is stripped", "example.com.", "example.com", false},
		{"Unicode becomes punycode", "bücher.example", "xn--bcher-kva.example", false},
		{"upper-case Unicode is lowered first", "BÜCHER.example", "xn--bcher-kva.example", false},
		{"punycode is kept", "xn--bcher-kva.example", "xn--bcher-kva.example", false},
		{"Unicode dots separate labels", "example。com", "example.com", false},
		{"a Japanese name", "例え.テスト", "xn--r8jz45g.xn--zckzah", false},
		{"digits and hyphens", "a-1.b2.example", "a-1.b2.example", false},
		{"a 63-character label", strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com", false},
		{"a wildcard where allowed", "*.Example.com", "*.example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeHostname(tt.in, tt.wildcard)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNormalizeHostnameRefuses(t *testing.T) {
	long := strings.Repeat(strings.Repeat("a", 63)+".", 4)[:254] // 254 characters, last label "a"
	tests := []struct {
		name, in, reason string
		wildcard         bool
	}{
		{"an empty name", "", "must not be empty", false},
		{"a single label", "localhost", "at least two labels", false},
		{"a single label with a dot", "localhost.", "at least two labels", false},
		{"an IPv4 address", "192.0.2.1", "IP address", false},
		{"an IPv6 address", "2001:db8::1", "IP address", false},
		{"a bracketed IPv6 address", "[::1]", "IP address", false},
		{"a numeric last label", "1.2.3", "IP address", false},
		{"a hex last label", "example.0x7f", "IP address", false},
		{"two trailing dots", "example.com..", "empty labels", false},
		{"a leading dot", ".example.com", "empty labels", false},
		{"a doubled dot", "a..example.com", "empty labels", false},
		{"an underscore", "a_b.example.com", "not a valid host name", false},
		{"a space", "a b.example.com", "not a valid host name", false},
		{"a scheme", "https://example.com", "not a valid host name", false},
		{"a port", "example.com:443", "not a valid host name", false},
		{"a leading hyphen", "-a.example.com", "not a valid host name", false},
		{"a 64-character label", strings.Repeat("a", 64) + ".com", "at most 63", false},
		{"over 253 characters", long, "at most 253", false},
		{"punycode that does not decode", "xn--zz.example", "not a valid host name", false},
		{"punycode of plain ASCII", "xn--abc-.example", "not a valid host name", false},
		{"a wildcard on a custom domain", "*.example.com", "wildcards are not allowed", false},
		{"a partial wildcard", "a*.example.com", "whole first label", true},
		{"a wildcard not first", "a.*.example.com", "whole first label", true},
		{"a wildcard over a top-level domain", "*.com", "followed by at least two labels", true},
		{"a wildcard alone", "*", "whole first label", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NormalizeHostname(tt.in, tt.wildcard)
			require.ErrorContains(t, err, tt.reason)
		})
	}
}

// FuzzNormalizeHostname checks that what NormalizeHostname returns is a lower-case ASCII
// hostname within the DNS limits, that it normalises to itself, and that a wildcard appears
// only where allowed.
func FuzzNormalizeHostname(f *testing.F) {
	f.Add("App.Example.com.", false)
	f.Add("bücher.example", false)
	f.Add("*.example.com", true)
	f.Fuzz(func(t *testing.T, s string, allowWildcard bool) {
		got, err := NormalizeHostname(s, allowWildcard)
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		require.LessOrEqual(t, len(got), MaxHostnameLength)
		name, wild := strings.CutPrefix(got, "*.")
		require.True(t, !wild || allowWildcard, "returned a wildcard %q when not allowed", got)
		labels := strings.Split(name, ".")
		require.GreaterOrEqual(t, len(labels), 2)
		for _, l := range labels {
			require.NotEmpty(t, l)
			require.LessOrEqual(t, len(l), MaxLabelLength)
			require.NotEqual(t, byte('-'), l[0])
			require.NotEqual(t, byte('-'), l[len(l)-1])
			for i := range len(l) {
				c := l[i]
				require.True(t, isDigit(c) || (c >= 'a' && c <= 'z') || c == '-', "label %q has %q", l, c)
			}
		}
		require.False(t, numericLabel(labels[len(labels)-1]))

		again, err := NormalizeHostname(got, allowWildcard)
		require.NoError(t, err, "the normalised form %q is refused", got)
		require.Equal(t, got, again, "normalising is not idempotent")
		if !wild {
			plain, err := NormalizeHostname(got, false)
			require.NoError(t, err)
			require.Equal(t, got, plain)
		}
	})
}
