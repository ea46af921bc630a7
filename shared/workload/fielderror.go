package workload

import (
	"fmt"
	"strings"
)

// FieldError is a rule one field of a request breaks. Field is the path of the field in the
// API's proto field names (spec.env[3].name, spec.health_check.interval, hostname); Reason
// says which rule it breaks, in words a user can act on.
type FieldError struct {
	Field  string
	Reason string
}

// Error returns "field: reason", the form the API's other InvalidArgument errors take.
func (e FieldError) Error() string {
	return e.Field + ": " + e.Reason
}

// FieldErrors lists every rule a request breaks, so a user can fix them all at once rather
// than one per attempt. A nil or empty FieldErrors means the request is valid; use Err to
// get a nil error in that case (a nil FieldErrors stored in an error interface is not nil).
type FieldErrors []FieldError

// Error returns the errors joined by "; ".
func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Err returns es as an error, or nil when es is empty.
func (es FieldErrors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// add appends a field error with a formatted reason.
func (es *FieldErrors) add(field, format string, args ...any) {
	*es = append(*es, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// under returns es with every field path moved under prefix: "interval" under
// "spec.health_check" becomes "spec.health_check.interval".
func (es FieldErrors) under(prefix string) FieldErrors {
	out := make(FieldErrors, len(es))
	for i, e := range es {
		out[i] = FieldError{Field: prefix + "." + e.Field, Reason: e.Reason}
	}
	return out
}
