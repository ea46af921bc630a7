package workload

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MaxAppNameLength bounds an app name; the apps table has the same CHECK.
const MaxAppNameLength = 30

// MaxEnvNameLength bounds an environment variable name, as the schema does.
const MaxEnvNameLength = 256

// ReservedEnvPrefix starts the names of the environment variables the platform sets in every
// replica; apps may not set them.
const ReservedEnvPrefix = "SKYPANEL_"

var (
	appNamePattern = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$`)
	envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// ValidateAppName checks an app name: a DNS label of 1 to 30 lower-case letters, digits and
// hyphens, starting with a letter and not ending with a hyphen (the apps table's CHECK).
//
// The name starts the app's default hostname label (<app>-<organization slug>), so it also
// may not have hyphens as its third and fourth characters ("ab--c"): such labels are
// reserved for punycode, IDNA refuses them and ACME CAs will not issue certificates for them.
// The database's CHECK does not know this rule.
func ValidateAppName(s string) error {
	if !appNamePattern.MatchString(s) {
		return errors.New("must be 1 to 30 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen")
	}
	if len(s) >= 4 && s[2:4] == "--" {
		return errors.New("must not have hyphens as its third and fourth characters (reserved for internationalized domain names)")
	}
	return nil
}

// ValidateEnvName checks an environment variable name: a POSIX name (a letter or
// underscore, then letters, digits and underscores) of at most 256 characters, not starting
// with SKYPANEL_ (the platform sets those; names are case-sensitive, so "skypanel_x" is the
// app's own).
func ValidateEnvName(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > MaxEnvNameLength:
		return fmt.Errorf("must be at most %d characters", MaxEnvNameLength)
	case !envNamePattern.MatchString(s):
		return fmt.Errorf("%q must be a letter or underscore, then letters, digits and underscores", s)
	case strings.HasPrefix(s, ReservedEnvPrefix):
		return fmt.Errorf("%q is reserved: the platform sets the %s* variables", s, ReservedEnvPrefix)
	}
	return nil
}

// ValidatePort checks a TCP port: 1 to 65535. Fields where 0 means "none" (such as
// AppSpec.port) skip the call when the value is 0.
func ValidatePort(p int32) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("must be a port from 1 to 65535, not %d", p)
	}
	return nil
}
