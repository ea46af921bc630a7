package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// TokenKind is what a bearer secret is for. The kind is the secret's visible prefix, so a
// leaked secret says what it is (and secret scanners can match it), and a secret of one kind
// is never accepted as another.
type TokenKind string

// Token kinds.
const (
	KindAccess     TokenKind = "spat"  // access token: a session's short-lived bearer
	KindRefresh    TokenKind = "sprt"  // refresh token: traded once for the next pair
	KindAPI        TokenKind = "spak"  // API token: an organization's long-lived bearer
	KindInvitation TokenKind = "spinv" // invitation link
	KindReset      TokenKind = "sprst" // password reset link
)

// secretBytes is the entropy of every token: 256 bits.
const secretBytes = 32

var tokenEncoding = base64.RawURLEncoding

// ErrMalformedToken means a string is not a well-formed token of the expected kind.
var ErrMalformedToken = errors.New("malformed token")

// NewToken returns a fresh random secret of the kind and the hash to store for it.
func NewToken(kind TokenKind) (secret string, hash []byte) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		panic("auth: crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	secret = string(kind) + "_" + tokenEncoding.EncodeToString(b)
	return secret, HashToken(secret)
}

// HashToken is what the database keeps of a secret. The secrets carry 256 random bits, so a
// plain SHA-256 is enough: there is nothing to brute-force.
func HashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ParseToken checks that secret is a well-formed token of kind and returns its hash.
func ParseToken(kind TokenKind, secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, string(kind)+"_")
	if !ok || len(rest) != tokenEncoding.EncodedLen(secretBytes) {
		return nil, ErrMalformedToken
	}
	if _, err := tokenEncoding.DecodeString(rest); err != nil {
		return nil, ErrMalformedToken
	}
	return HashToken(secret), nil
}

// TokenPrefix is the part of a secret shown in listings: the kind and six characters.
func TokenPrefix(secret string) string {
	if i := strings.IndexByte(secret, '_'); i >= 0 && len(secret) >= i+7 {
		return secret[:i+7]
	}
	return ""
}

// BearerKind tells which kind a bearer secret claims to be, from its prefix.
func BearerKind(secret string) (TokenKind, bool) {
	kind, _, ok := strings.Cut(secret, "_")
	switch TokenKind(kind) {
	case KindAccess, KindAPI:
		return TokenKind(kind), ok
	}
	return "", false
}
