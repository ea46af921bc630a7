// Package secrets encrypts values at rest under the platform's master key: the CA's private
// key, swarm join tokens, registry credentials and app env values marked secret. It uses
// AES-256-GCM; every ciphertext names the key that sealed it, so keys can rotate: new values
// are sealed with the primary key, old ones still open with the keys kept for reading.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeyBytes is the length of a master key: 256 bits.
const KeyBytes = 32

// version prefixes every sealed value, so the format itself can change later.
const version = "v1"

// Key is one master key and its id.
type Key struct {
	// ID names the key in every ciphertext it seals: 1-16 characters of [a-z0-9].
	ID     string
	Secret [KeyBytes]byte
}

// Keyring seals with its primary key and opens with any of its keys.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// ErrUnknownKey means a ciphertext was sealed with a key the keyring does not hold.
var ErrUnknownKey = errors.New("sealed with an unknown master key")

// NewKeyring builds a keyring; the first key is the primary one.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("new keyring: no keys")
	}
	k := &Keyring{primary: keys[0].ID, aeads: map[string]cipher.AEAD{}}
	for _, key := range keys {
		if !validID(key.ID) {
			return nil, fmt.Errorf("new keyring: key id %q: want 1-16 characters of a-z and 0-9", key.ID)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("new keyring: key id %q given twice", key.ID)
		}
		block, err := aes.NewCipher(key.Secret[:])
		if err != nil {
			return nil, fmt.Errorf("new keyring: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("new keyring: %w", err)
		}
		k.aeads[key.ID] = aead
	}
	return k, nil
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 16 {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Seal encrypts plaintext with the primary key. context binds the ciphertext to where it is
// stored (for example "ca-key" or "app-env:<app id>:<name>"): a value copied to another
// place fails to open.
func (k *Keyring) Seal(plaintext []byte, context string) string {
	aead := k.aeads[k.primary]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("secrets: crypto/rand failed: " + err.Error())
	}
	sealed := aead.Seal(nonce, nonce, plaintext, []byte(context))
	return version + "." + k.primary + "." + base64.RawURLEncoding.EncodeToString(sealed)
}

// Open decrypts a value made by Seal with the same context.
func (k *Keyring) Open(sealed, context string) ([]byte, error) {
	parts := strings.Split(sealed, ".")
	if len(parts) != 3 || parts[0] != version {
		return nil, errors.New("open secret: not a sealed value")
	}
	aead, ok := k.aeads[parts[1]]
	if !ok {
		return nil, fmt.Errorf("open secret: key %q: %w", parts[1], ErrUnknownKey)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("open secret: malformed ciphertext")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(context))
	if err != nil {
		return nil, errors.New("open secret: wrong key, wrong context or tampered ciphertext")
	}
	return plain, nil
}

// KeyID returns the id of the key that sealed a value, to find values to re-seal after a
// rotation.
func KeyID(sealed string) string {
	parts := strings.Split(sealed, ".")
	if len(parts) != 3 {
		return ""
	}
	return parts[1]
}

// ParseKeys reads master keys from text: one key per line as `id:hex-secret` (64 hex digits);
// the first line is the primary key. Blank lines and lines starting with # are skipped.
func ParseKeys(text string) ([]Key, error) {
	var keys []Key
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, hexSecret, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("master key line %d: want id:hex-secret", n+1)
		}
		raw, err := hex.DecodeString(hexSecret)
		if err != nil || len(raw) != KeyBytes {
			return nil, fmt.Errorf("master key line %d: the secret must be %d hex digits", n+1, 2*KeyBytes)
		}
		var k Key
		k.ID = id
		copy(k.Secret[:], raw)
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("master key: no keys found")
	}
	return keys, nil
}

// LoadKeyFile reads a keyring from a file, refusing files others can read.
func LoadKeyFile(path string) (*Keyring, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load master key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load master key: %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load master key: %w", err)
	}
	keys, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("load master key %s: %w", path, err)
	}
	return NewKeyring(keys...)
}

// GenerateKeyLine returns a new key line for a key file: `id:hex-secret`.
func GenerateKeyLine(id string) (string, error) {
	if !validID(id) {
		return "", fmt.Errorf("generate master key: id %q: want 1-16 characters of a-z and 0-9", id)
	}
	var b [KeyBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate master key: %w", err)
	}
	return id + ":" + hex.EncodeToString(b[:]), nil
}
