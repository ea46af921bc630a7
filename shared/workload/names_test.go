package workload

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateAppName(t *testing.T) {
	for _, ok := range []string{"a", "web", "api-2", "a1", strings.Repeat("a", 30), "a-b-c"} {
		t.Run("accepts "+ok, func(t *testing.T) {
			require.NoError(t, ValidateAppName(ok))
		})
	}
	for _, bad := range []string{"", "Web", "1web", "-web", "web-", "we_b", "we.b", "wéb", strings.Repeat("a", 31), " web"} {
		t.Run("refuses "+bad, func(t *testing.T) {
			require.ErrorContains(t, ValidateAppName(bad), "lower-case letters, digits and hyphens")
		})
	}
	for _, bad := range []string{"ab--c", "xn--abc", "a0--0"} {
		t.Run("refuses "+bad+", which its default hostname could not be", func(t *testing.T) {
			require.ErrorContains(t, ValidateAppName(bad), "third and fourth characters")
		})
	}
	require.NoError(t, ValidateAppName("a--b"), "hyphens elsewhere are fine")
}

// FuzzValidateAppName checks that an accepted app name can serve as a DNS label of the
// app's default hostname and is within the database's length limit.
func FuzzValidateAppName(f *testing.F) {
	f.Add("web")
	f.Add("a-b")
	f.Add("web-")
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateAppName(s) != nil {
			return
		}
		require.LessOrEqual(t, len(s), MaxAppNameLength)
		host := s + "-acme.apps.example.com"
		got, err := NormalizeHostname(host, false)
		require.NoError(t, err, "the default hostname %q is not a hostname", host)
		require.Equal(t, host, got)
	})
}

func TestValidateEnvName(t *testing.T) {
	for _, ok := range []string{"A", "_", "DATABASE_URL", "a1", "skypanel_own", "SKYPANEL", strings.Repeat("A", 256)} {
		t.Run("accepts "+ok[:min(len(ok), 20)], func(t *testing.T) {
			require.NoError(t, ValidateEnvName(ok))
		})
	}
	tests := []struct{ name, in, reason string }{
		{"an empty name", "", "must not be empty"},
		{"a leading digit", "1A", "letter or underscore"},
		{"a hyphen", "A-B", "letter or underscore"},
		{"a dot", "a.b", "letter or underscore"},
		{"a space", "A B", "letter or underscore"},
		{"an equals sign", "A=B", "letter or underscore"},
		{"non-ASCII", "É", "letter or underscore"},
		{"a platform variable", "SKYPANEL_APP_ID", "reserved"},
		{"the bare platform prefix", "SKYPANEL_", "reserved"},
		{"over 256 characters", strings.Repeat("A", 257), "at most 256"},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			require.ErrorContains(t, ValidateEnvName(tt.in), tt.reason)
		})
	}
}

// FuzzValidateEnvName checks that an accepted name is one a .env file can carry: ParseDotenv
// reads "NAME=value" back with that name.
func FuzzValidateEnvName(f *testing.F) {
	f.Add("DATABASE_URL")
	f.Add("SKYPANEL_X")
	f.Add("_1")
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateEnvName(s) != nil {
			return
		}
		require.False(t, strings.HasPrefix(s, ReservedEnvPrefix))
		vars, err := ParseDotenv(s + "=v")
		require.NoError(t, err)
		require.Len(t, vars, 1)
		require.Equal(t, s, vars[0].GetName())
	})
}

func TestValidatePort(t *testing.T) {
	for _, p := range []int32{1, 80, 8080, 65535} {
		require.NoError(t, ValidatePort(p), "port %d", p)
	}
	for _, p := range []int32{0, -1, 65536, 1 << 30} {
		require.ErrorContains(t, ValidatePort(p), "from 1 to 65535", "port %d", p)
	}
}

// FuzzValidatePort checks the bounds over the whole int32 range.
func FuzzValidatePort(f *testing.F) {
	f.Add(int32(0))
	f.Add(int32(65535))
	f.Add(int32(65536))
	f.Fuzz(func(t *testing.T, p int32) {
		require.Equal(t, p >= 1 && p <= 65535, ValidatePort(p) == nil, "port %d", p)
	})
}
