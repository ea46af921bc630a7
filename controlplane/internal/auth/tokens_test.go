package auth

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var allKinds = []TokenKind{KindAccess, KindRefresh, KindAPI, KindInvitation, KindReset}

func TestNewTokenParsesAsItsOwnKindAndNoOther(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			secret, hash := NewToken(kind)
			require.True(t, strings.HasPrefix(secret, string(kind)+"_"), secret)
			require.Equal(t, HashToken(secret), hash, "the stored hash is the hash of the secret")

			got, err := ParseToken(kind, secret)
			require.NoError(t, err)
			require.Equal(t, hash, got)
			for _, other := range allKinds {
				if other == kind {
					continue
				}
				_, err := ParseToken(other, secret)
				require.ErrorIs(t, err, ErrMalformedToken, "a %s token is not a %s token", kind, other)
			}
		})
	}
}

func TestNewTokensAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		secret, _ := NewToken(KindAccess)
		require.False(t, seen[secret], "secret repeated: %s", secret)
		seen[secret] = true
	}
}

func TestParseTokenRejectsMalformedSecrets(t *testing.T) {
	good, _ := NewToken(KindAccess)
	body := strings.TrimPrefix(good, "spat_")
	for name, secret := range map[string]string{
		"an empty string":            "",
		"the prefix alone":           "spat_",
		"no separator":               "spat" + body,
		"another separator":          "spat-" + body,
		"an upper-case prefix":       "SPAT_" + body,
		"a body one character short": "spat_" + body[1:],
		"a body one character long":  good + "A",
		"padding":                    "spat_" + body[:42] + "=",
		"standard base64 characters": "spat_" + body[:41] + "+/",
		"leading space":              " " + good,
		"trailing newline":           good + "\n",
		"a body that is not base64":  "spat_" + strings.Repeat("!", len(body)),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseToken(KindAccess, secret)
			require.ErrorIs(t, err, ErrMalformedToken)
		})
	}
}

func TestTokenPrefixShowsTheKindAndSixCharacters(t *testing.T) {
	secret, _ := NewToken(KindAPI)
	require.Equal(t, secret[:len("spak_")+6], TokenPrefix(secret))
	require.Equal(t, "spinv_abcdef", TokenPrefix("spinv_abcdefghij"))
	require.Empty(t, TokenPrefix("spak_abc"), "too short to show six characters")
	require.Empty(t, TokenPrefix("no-separator-here"))
}

func TestBearerKindAcceptsOnlyAccessAndAPITokens(t *testing.T) {
	for _, kind := range allKinds {
		secret, _ := NewToken(kind)
		got, ok := BearerKind(secret)
		if kind == KindAccess || kind == KindAPI {
			require.True(t, ok, kind)
			require.Equal(t, kind, got)
		} else {
			require.False(t, ok, "a %s token is no bearer", kind)
		}
	}
	for _, s := range []string{"", "spat", "garbage", "_spat"} {
		_, ok := BearerKind(s)
		require.False(t, ok, "%q", s)
	}
}

// FuzzParseToken checks that ParseToken never panics, that at most one kind accepts a string,
// and that an accepted string has exactly the shape NewToken makes.
func FuzzParseToken(f *testing.F) {
	for _, kind := range allKinds {
		secret, _ := NewToken(kind)
		f.Add(secret)
	}
	f.Add("")
	f.Add("spat_")
	f.Add("sprt_" + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		accepted := 0
		for _, kind := range allKinds {
			hash, err := ParseToken(kind, s)
			if err != nil {
				require.ErrorIs(t, err, ErrMalformedToken)
				require.Nil(t, hash)
				continue
			}
			accepted++
			require.True(t, strings.HasPrefix(s, string(kind)+"_"))
			require.Len(t, s, len(kind)+1+tokenEncoding.EncodedLen(secretBytes))
			require.True(t, bytes.Equal(HashToken(s), hash))
			if bearer, ok := BearerKind(s); ok {
				require.Equal(t, kind, bearer, "BearerKind agrees with ParseToken")
			}
		}
		require.LessOrEqual(t, accepted, 1, "%q parses as more than one kind", s)
	})
}
