package auth

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"buf.build/go/protovalidate"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/store"
	authv1 "skypanel/shared/gen/go/skypanel/auth/v1"
)

// FuzzValidateSignUp runs the schema's sign-up rules, as the interceptor does, on arbitrary
// input. Whatever they accept must also satisfy the users table (email = lower(email), 3 to 254
// characters) once normalized, or a sign-up would fail inside the database instead of with
// InvalidArgument; whatever they refuse must be refused naming a field of the request.
func FuzzValidateSignUp(f *testing.F) {
	v, err := protovalidate.New()
	require.NoError(f, err)
	f.Add("ann@example.com", "correct horse")
	f.Add("Ann@Example.COM", "0123456789")
	f.Add("a@b", strings.Repeat("p", 256))
	f.Add(" ann@example.com", "short")
	f.Add("ann.example.com", "correct horse")
	f.Add("ann@exämple.com", "ñññññññññññ")
	f.Fuzz(func(t *testing.T, email, password string) {
		err := v.Validate(&authv1.SignUpRequest{Email: email, Password: password})
		if err != nil {
			var verr *protovalidate.ValidationError
			require.True(t, errors.As(err, &verr), "a refusal is a validation error, not %T: %v", err, err)
			require.NotEmpty(t, verr.Violations)
			for _, viol := range verr.Violations {
				field := protovalidate.FieldPathString(viol.Proto.GetField())
				require.Contains(t, []string{"email", "password"}, field)
			}
			return
		}
		require.Contains(t, email, "@")
		n := utf8.RuneCountInString(password)
		require.True(t, n >= 10 && n <= 256, "accepted a password of %d characters", n)

		normalized := store.NormalizeEmail(email)
		require.Equal(t, email, strings.TrimSpace(email), "accepted an email with surrounding space")
		require.True(t, len(normalized) >= 3 && len(normalized) <= 254, "accepted an email of %d bytes", len(normalized))
		for i := range len(email) {
			require.Less(t, email[i], byte(utf8.RuneSelf), "accepted a non-ASCII email, where Go's and Postgres's lower-casing may differ")
		}
	})
}
