package workload

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
)

// pairs returns the names and values of vars as name=value strings, for comparisons.
func pairs(vars []*appv1.EnvVar) []string {
	out := []string{}
	for _, v := range vars {
		require.False(nil, v.GetSecret())
		out = append(out, v.GetName()+"="+v.GetValue())
	}
	return out
}

func TestParseDotenv(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"an empty file", "", []string{}},
		{"comments and blank lines", "# a comment\n\n   \n  # indented\nA=1\n", []string{"A=1"}},
		{"a plain value", "A=hello world", []string{"A=hello world"}},
		{"an empty value", "A=\nB=", []string{"A=", "B="}},
		{"export", "export A=1\nexport\tB=2", []string{"A=1", "B=2"}},
		{"a variable named export", "export=1", []string{"export=1"}},
		{"spaces around the equals sign", "  A = 1  ", []string{"A=1"}},
		{"a trailing comment", "A=1 # the answer\nB=2\t# tab", []string{"A=1", "B=2"}},
		{"a hash inside a value", "URL=http://x/#frag\nC=a#b", []string{"URL=http://x/#frag", "C=a#b"}},
		{"a hash straight after the equals sign", "A=#x", []string{"A=#x"}},
		{"a comment after a space and no value", "A= # nothing", []string{"A="}},
		{"an equals sign in a value", "A=b=c", []string{"A=b=c"}},
		{"single quotes are literal", `A='$HOME \n "x" # y'`, []string{`A=$HOME \n "x" # y`}},
		{"single quotes may span lines", "A='one\ntwo'\nB=3", []string{"A=one\ntwo", "B=3"}},
		{"double quotes process escapes", `A="a\nb\tc\r \"q\" \\ \$x \d"`, []string{"A=a\nb\tc\r \"q\" \\ \\$x \\d"}},
		{"double quotes may span lines", "A=\"-----BEGIN-----\nabc\n-----END-----\"\nB=2", []string{"A=-----BEGIN-----\nabc\n-----END-----", "B=2"}},
		{"a comment after a closing quote", `A="x" # c` + "\nB='y'   ", []string{"A=x", "B=y"}},
		{"quoted spaces are kept", `A="  x  "`, []string{"A=  x  "}},
		{"CRLF line ends", "A=1\r\nB=\"x\r\ny\"\r\n# c\r\nC=3", []string{"A=1", "B=x\ny", "C=3"}},
		{"a byte-order mark", "\ufeffA=1", []string{"A=1"}},
		{"no expansion", "A=1\nB=$A${A}", []string{"A=1", "B=$A${A}"}},
		{"the last duplicate wins, in the first place", "A=1\nB=2\nA=3", []string{"A=3", "B=2"}},
		{"Unicode values", "A=héllo ✓", []string{"A=héllo ✓"}},
		{"no final newline", "A=1", []string{"A=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDotenv(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, pairs(got))
		})
	}
}

func TestParseDotenvRefuses(t *testing.T) {
	tests := []struct{ name, in, err string }{
		{"a line without an equals sign", "A=1\n\nB", "line 3: expected NAME=value"},
		{"export without a value", "export A", "line 1: expected NAME=value"},
		{"an empty name", "=1", "line 1: name must not be empty"},
		{"a bad name", "A=1\nMY-VAR=2", `line 2: name "MY-VAR" must be a letter or underscore`},
		{"a platform name", "SKYPANEL_TOKEN=x", `line 1: name "SKYPANEL_TOKEN" is reserved`},
		{"an unterminated single quote", "A=1\nB='abc\nC=2", "line 2: unterminated single-quoted value"},
		{"an unterminated double quote", "A=\"abc\\\"", "line 1: unterminated double-quoted value"},
		{"a backslash at the very end", `A="abc\`, "line 1: unterminated double-quoted value"},
		{"text after a closing quote", "A=1\nB=\"x\ny\" z", "line 3: unexpected text after the closing quote"},
		{"text after a single quote", "A='x'y", "line 1: unexpected text after the closing quote"},
		{"line numbers count lines inside quotes", "A='1\n2\n3'\nB", "line 4: expected NAME=value"},
		{"a NUL in a value", "A=1\nB=a\x00b", "line 2: value must not contain NUL characters"},
		{"invalid UTF-8", "A=1\n\uFFFD=\nB=\xff", "line 3: not valid UTF-8"},
		{"a value too long", "A=" + strings.Repeat("é", MaxEnvValueLength+1), "line 1: value must be at most 32768 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDotenv(tt.in)
			require.ErrorContains(t, err, tt.err)
		})
	}
}

func TestFormatDotenv(t *testing.T) {
	env := []*appv1.EnvVar{
		{Name: "PLAIN", Value: "hello world"},
		{Name: "EMPTY"},
		{Name: "HASH", Value: "a #b"},
		{Name: "PADDED", Value: " x "},
		{Name: "QUOTE", Value: `"q"`},
		{Name: "APOSTROPHE", Value: "it's #1"},
		{Name: "MULTILINE", Value: "a\nb\\c\r"},
		{Name: "TOKEN", Value: "s3cret", Secret: true},
		{Name: "KEPT", Secret: true, Keep: true, HasValue: true},
	}
	got := FormatDotenv(env)
	require.Equal(t, `PLAIN=hello world
EMPTY=
HASH='a #b'
PADDED=' x '
QUOTE='"q"'
APOSTROPHE="it's #1"
MULTILINE="a\nb\\c\r"
# TOKEN=<secret, not exported>
# KEPT=<secret, not exported>
`, got)
	require.NotContains(t, got, "s3cret")

	back, err := ParseDotenv(got)
	require.NoError(t, err)
	require.Equal(t, pairs(env[:7]), pairs(back), "the non-secret variables read back the same")
}

// FuzzParseDotenv checks that ParseDotenv never panics, that its errors name a line, and that
// what it reads is written by FormatDotenv in a form it reads back the same.
func FuzzParseDotenv(f *testing.F) {
	f.Add("A=1\nexport B='x'\n# c\nC=\"a\\nb\" # d\n")
	f.Add("A=\"multi\r\nline\"\r\n")
	f.Add("A=1\nA=2")
	f.Fuzz(func(t *testing.T, content string) {
		vars, err := ParseDotenv(content)
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "line "), "error %q does not name a line", err)
			return
		}
		names := map[string]bool{}
		for _, v := range vars {
			require.NoError(t, ValidateEnvName(v.GetName()))
			require.False(t, names[v.GetName()], "duplicate %s", v.GetName())
			names[v.GetName()] = true
			require.True(t, utf8.ValidString(v.GetValue()))
		}
		formatted := FormatDotenv(vars)
		back, err := ParseDotenv(formatted)
		require.NoError(t, err, "cannot read back %q", formatted)
		require.Equal(t, pairs(vars), pairs(back), "round trip through %q", formatted)
	})
}

// FuzzDotenvRoundTrip builds variables from arbitrary names and values and checks
// ParseDotenv(FormatDotenv(x)) == x for the non-secret ones, and that secret values are
// left out. data holds NAME\x00VALUE\x00NAME\x00VALUE...; bit i of secret marks variable i.
func FuzzDotenvRoundTrip(f *testing.F) {
	f.Add("A\x00plain\x00B\x00 padded \x00C\x00it's \"both\"\nand a newline", uint8(0))
	f.Add("TOKEN\x00p@ss # word\x00URL\x00http://x/#y", uint8(1))
	f.Add("A\x00\\\x00B\x00'\x00C\x00\r", uint8(4))
	f.Fuzz(func(t *testing.T, data string, secret uint8) {
		parts := strings.Split(data, "\x00")
		var env, public []*appv1.EnvVar
		seen := map[string]bool{}
		for i := 0; i+1 < len(parts); i += 2 {
			name, value := parts[i], parts[i+1]
			if ValidateEnvName(name) != nil || seen[name] || !utf8.ValidString(value) || utf8.RuneCountInString(value) > MaxEnvValueLength {
				continue
			}
			seen[name] = true
			v := &appv1.EnvVar{Name: name, Value: value, Secret: secret&(1<<(len(env)%8)) != 0}
			env = append(env, v)
			if !v.Secret {
				public = append(public, v)
			}
		}
		formatted := FormatDotenv(env)
		back, err := ParseDotenv(formatted)
		require.NoError(t, err, "cannot read back %q", formatted)
		require.Equal(t, pairs(public), pairs(back), "round trip through %q", formatted)
		for _, v := range env {
			if v.Secret {
				require.Contains(t, formatted, "# "+v.Name+"=<secret, not exported>\n")
			}
		}
	})
}
