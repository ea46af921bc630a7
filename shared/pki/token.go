package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// EnrollmentTokenPrefix starts every enrollment token.
const EnrollmentTokenPrefix = "spen"

// ErrMalformedEnrollmentToken means a string is not an enrollment token.
var ErrMalformedEnrollmentToken = errors.New("malformed enrollment token: want spen.<64 hex digits>.<secret>")

// EnrollmentToken is what an admin hands to a new node: the CA pin, so the node can check it
// talks to the right control plane before sending anything secret, and a one-time secret.
// Written as spen.<pin>.<secret>.
type EnrollmentToken struct {
	CAPin  string
	Secret string
}

// NewEnrollmentToken makes a token for a CA pin with 256 random bits of secret.
func NewEnrollmentToken(caPin string) EnrollmentToken {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("pki: crypto/rand failed: " + err.Error())
	}
	return EnrollmentToken{CAPin: caPin, Secret: base64.RawURLEncoding.EncodeToString(b)}
}

// String writes the token.
func (t EnrollmentToken) String() string {
	return EnrollmentTokenPrefix + "." + t.CAPin + "." + t.Secret
}

// Hash is what the control plane stores of the token: the SHA-256 of its secret.
func (t EnrollmentToken) Hash() []byte {
	h := sha256.Sum256([]byte(t.Secret))
	return h[:]
}

// ParseEnrollmentToken reads a token written by String.
func ParseEnrollmentToken(s string) (EnrollmentToken, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 || parts[0] != EnrollmentTokenPrefix || len(parts[1]) != 64 || len(parts[2]) != 43 {
		return EnrollmentToken{}, ErrMalformedEnrollmentToken
	}
	if _, err := hex.DecodeString(parts[1]); err != nil || strings.ToLower(parts[1]) != parts[1] {
		return EnrollmentToken{}, ErrMalformedEnrollmentToken
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return EnrollmentToken{}, ErrMalformedEnrollmentToken
	}
	return EnrollmentToken{CAPin: parts[1], Secret: parts[2]}, nil
}
