package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func key(t *testing.T, id string) Key {
	t.Helper()
	line, err := GenerateKeyLine(id)
	require.NoError(t, err)
	keys, err := ParseKeys(line)
	require.NoError(t, err)
	return keys[0]
}

func TestSealedValuesOpenOnlyWithTheirKeyAndContext(t *testing.T) {
	k1 := key(t, "k1")
	ring, err := NewKeyring(k1)
	require.NoError(t, err)
	sealed := ring.Seal([]byte("join-token"), "swarm:c1")
	require.NotContains(t, sealed, "join-token")
	require.Equal(t, "k1", KeyID(sealed))

	plain, err := ring.Open(sealed, "swarm:c1")
	require.NoError(t, err)
	require.Equal(t, "join-token", string(plain))

	_, err = ring.Open(sealed, "swarm:c2")
	require.Error(t, err, "a value moved to another place does not open")

	other, err := NewKeyring(key(t, "k1"))
	require.NoError(t, err)
	_, err = other.Open(sealed, "swarm:c1")
	require.Error(t, err, "a different secret under the same id does not open it")

	tampered := sealed[:len(sealed)-2] + "AA"
	_, err = ring.Open(tampered, "swarm:c1")
	require.Error(t, err)
}

func TestRotationSealsWithTheNewKeyAndStillOpensOldValues(t *testing.T) {
	old, next := key(t, "old"), key(t, "next")
	before, err := NewKeyring(old)
	require.NoError(t, err)
	sealedBefore := before.Seal([]byte("v"), "c")

	after, err := NewKeyring(next, old)
	require.NoError(t, err)
	plain, err := after.Open(sealedBefore, "c")
	require.NoError(t, err)
	require.Equal(t, "v", string(plain))
	require.Equal(t, "next", KeyID(after.Seal([]byte("v"), "c")))

	onlyNext, err := NewKeyring(next)
	require.NoError(t, err)
	_, err = onlyNext.Open(sealedBefore, "c")
	require.ErrorIs(t, err, ErrUnknownKey)
}

func TestKeyringsRefuseBadKeys(t *testing.T) {
	_, err := NewKeyring()
	require.Error(t, err)
	_, err = NewKeyring(Key{ID: "Bad-ID"})
	require.ErrorContains(t, err, "key id")
	k := key(t, "a")
	_, err = NewKeyring(k, k)
	require.ErrorContains(t, err, "twice")
	for _, text := range []string{"", "# only a comment", "a:zz", "a:" + strings.Repeat("ab", 31), "no-colon"} {
		_, err := ParseKeys(text)
		require.Error(t, err, "%q", text)
	}
}

func TestKeyFilesReadableByOthersAreRefused(t *testing.T) {
	line, err := GenerateKeyLine("k1")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(path, []byte("# platform key\n"+line+"\n"), 0o644))
	_, err = LoadKeyFile(path)
	require.ErrorContains(t, err, "chmod 600")
	require.NoError(t, os.Chmod(path, 0o600))
	ring, err := LoadKeyFile(path)
	require.NoError(t, err)
	plain, err := ring.Open(ring.Seal([]byte("x"), "c"), "c")
	require.NoError(t, err)
	require.Equal(t, "x", string(plain))
}

func FuzzOpenNeverPanics(f *testing.F) {
	ring, err := NewKeyring(Key{ID: "k1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ring.Seal([]byte("hello"), "c"), "c")
	f.Add("v1.k1.", "c")
	f.Add("v1.zz.AAAA", "")
	f.Add("garbage", "c")
	f.Fuzz(func(t *testing.T, sealed, context string) {
		plain, err := ring.Open(sealed, context)
		if err == nil && !strings.HasPrefix(sealed, "v1.k1.") {
			t.Fatalf("opened a value not sealed by k1: %q -> %q", sealed, plain)
		}
	})
}
