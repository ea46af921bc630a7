package workload

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFieldErrors(t *testing.T) {
	t.Run("an error reads field: reason", func(t *testing.T) {
		require.EqualError(t, FieldError{Field: "spec.image", Reason: "must not be empty"}, "spec.image: must not be empty")
	})
	t.Run("a list joins every error", func(t *testing.T) {
		errs := FieldErrors{{"spec.image", "must not be empty"}, {"spec.port", "must be a port"}}
		require.EqualError(t, errs, "spec.image: must not be empty; spec.port: must be a port")
		require.Equal(t, errs, errs.Err())
	})
	t.Run("an empty list is a nil error", func(t *testing.T) {
		var errs FieldErrors
		require.NoError(t, errs.Err())
		require.NoError(t, FieldErrors{}.Err())
	})
	t.Run("errors move under a prefix", func(t *testing.T) {
		errs := FieldErrors{{"interval", "x"}, {"command[0]", "y"}}.under("spec.health_check")
		require.Equal(t, FieldErrors{{"spec.health_check.interval", "x"}, {"spec.health_check.command[0]", "y"}}, errs)
	})
}
