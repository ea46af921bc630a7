package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"
)

// cheap are the lowest costs argon2id takes; the tests that are not about cost use them.
var cheap = PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

func TestHashPasswordRoundTrip(t *testing.T) {
	hash, err := HashPassword("correct horse battery", cheap)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$"), hash)
	require.NoError(t, VerifyPassword("correct horse battery", hash))

	for _, wrong := range []string{"", "correct horse batter", "correct horse battery ", "Correct horse battery"} {
		require.ErrorIs(t, VerifyPassword(wrong, hash), ErrPasswordMismatch, "%q", wrong)
	}

	again, err := HashPassword("correct horse battery", cheap)
	require.NoError(t, err)
	require.NotEqual(t, hash, again, "every hash has its own salt")
	require.NoError(t, VerifyPassword("correct horse battery", again))
}

func TestDefaultPasswordParamsHashAndVerify(t *testing.T) {
	hash, err := HashPassword("correct horse battery", DefaultPasswordParams())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$"), hash)
	require.NoError(t, VerifyPassword("correct horse battery", hash))
	require.ErrorIs(t, VerifyPassword("wrong horse battery", hash), ErrPasswordMismatch)
}

func TestVerifyPasswordUsesTheCostsAndKeyLengthInTheHash(t *testing.T) {
	// A hash made elsewhere with other costs and a shorter key still verifies: raising the
	// costs later must not lock anyone out.
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("hunter2hunter2"), salt, 2, 128, 2, 16)
	hash := fmt.Sprintf("$argon2id$v=19$m=128,t=2,p=2$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	require.NoError(t, VerifyPassword("hunter2hunter2", hash))
	require.ErrorIs(t, VerifyPassword("hunter3hunter3", hash), ErrPasswordMismatch)
}

func TestVerifyPasswordRejectsMalformedHashes(t *testing.T) {
	good, err := HashPassword("pw", cheap)
	require.NoError(t, err)
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..,t=..,p=.., salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	b64 := func(n int) string { return base64.RawStdEncoding.EncodeToString(make([]byte, n)) }
	for name, hash := range map[string]string{
		"an empty string":        "",
		"a plain-text password":  "pw",
		"a bcrypt hash":          "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i, not argon2id":  with(1, "argon2i"),
		"another version":        with(2, "v=16"),
		"no version":             with(2, ""),
		"no parameters":          with(3, ""),
		"zero memory":            with(3, "m=0,t=1,p=1"),
		"memory over 1 GiB":      with(3, "m=1048577,t=1,p=1"),
		"zero iterations":        with(3, "m=64,t=0,p=1"),
		"more than 16 passes":    with(3, "m=64,t=17,p=1"),
		"zero parallelism":       with(3, "m=64,t=1,p=0"),
		"parallelism over 255":   with(3, "m=64,t=1,p=256"),
		"negative memory":        with(3, "m=-1,t=1,p=1"),
		"a salt that is not b64": with(4, "!!!!!!!!!!!!"),
		"a salt under 8 bytes":   with(4, b64(7)),
		"a key that is not b64":  with(5, "!!!!!!!!!!!!!!!!!!!!!!"),
		"a key under 16 bytes":   with(5, b64(15)),
		"a key over 64 bytes":    with(5, b64(65)),
		"an extra field":         good + "$extra",
		"a missing field":        strings.Join(parts[:5], "$"),
		"no leading dollar":      strings.TrimPrefix(good, "$"),
	} {
		t.Run(name, func(t *testing.T) {
			err := VerifyPassword("pw", hash)
			require.Error(t, err)
			require.False(t, errors.Is(err, ErrPasswordMismatch), "a malformed hash is not a wrong password: %v", err)
		})
	}
}

// FuzzVerifyPassword checks that any password survives a hash round trip, and that
// VerifyPassword never panics on a hash string it did not make.
func FuzzVerifyPassword(f *testing.F) {
	good, err := HashPassword("correct horse battery", cheap)
	require.NoError(f, err)
	f.Add("correct horse battery", good)
	f.Add("", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("pw", "$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("pw", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")
	f.Fuzz(func(t *testing.T, password, hash string) {
		own, err := HashPassword(password, cheap)
		require.NoError(t, err)
		require.NoError(t, VerifyPassword(password, own))
		require.ErrorIs(t, VerifyPassword(password+"x", own), ErrPasswordMismatch)

		// Arbitrary hashes: a hash may ask for up to 1 GiB and 16 passes, which is a valid
		// (if slow) hash, not a bug; the fuzzer only runs the cheap ones.
		p, _, _, err := parsePasswordHash(hash)
		if err != nil {
			verr := VerifyPassword(password, hash)
			require.Error(t, verr)
			require.False(t, errors.Is(verr, ErrPasswordMismatch), "a malformed hash is not a wrong password")
			return
		}
		if uint64(p.MemoryKiB)*uint64(p.Iterations) > 4096 {
			t.Skip("expensive parameters")
		}
		if err := VerifyPassword(password, hash); err != nil {
			require.ErrorIs(t, err, ErrPasswordMismatch)
		}
	})
}
