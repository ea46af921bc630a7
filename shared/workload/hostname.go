package workload

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// Hostname limits, from RFC 1035.
const (
	MaxHostnameLength = 253
	MaxLabelLength    = 63
)

// NormalizeHostname returns the ASCII form of a hostname a user typed, as the platform stores
// it and the edge routes by it, or an error saying why it cannot be a public hostname.
//
// It maps the name as a lookup would (IDNA2008 with UTS #46: lower-case, Unicode to punycode,
// "EXAMPLE.com" and "bücher.example" become "example.com" and "xn--bcher-kva.example"),
// strips one trailing dot, and then requires: labels of 1 to 63 letters, digits and hyphens
// not starting or ending with a hyphen, nor with hyphens third and fourth unless they are
// "xn--" labels (such names are reserved; ACME CAs refuse them); at most 253 characters; at
// least two labels; not an IP address (nor anything a browser would read as one: a numeric
// last label); and "xn--" labels that are the canonical punycode of a valid Unicode label.
//
// With allowWildcard, "*." may stand for the whole first label, followed by at least two
// labels ("*.example.com", not "*.com" or "a*.example.com"). Custom domains call it with
// false: they must name one host whose ownership can be proven.
//
// NormalizeHostname is idempotent: a result it returns normalises to itself.
func NormalizeHostname(s string, allowWildcard bool) (string, error) {
	if s == "" {
		return "", errors.New("must not be empty")
	}
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return "", errors.New("must be a host name, not an IP address")
	}
	wildcard := false
	if rest, ok := strings.CutPrefix(s, "*."); ok && allowWildcard {
		wildcard, s = true, rest
	}
	if strings.Contains(s, "*") {
		if allowWildcard {
			return "", errors.New(`a wildcard must be the whole first label, as in *.example.com`)
		}
		return "", errors.New("wildcards are not allowed")
	}
	ascii, err := idna.Lookup.ToASCII(s)
	if err != nil {
		return "", fmt.Errorf("is not a valid host name: %s", idnaReason(err))
	}
	ascii = strings.TrimSuffix(ascii, ".")
	labels := strings.Split(ascii, ".")
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return "", err
		}
	}
	if len(labels) < 2 {
		if wildcard {
			return "", errors.New("a wildcard must be followed by at least two labels, as in *.example.com")
		}
		return "", errors.New("must have at least two labels, as in example.com")
	}
	if numericLabel(labels[len(labels)-1]) {
		return "", errors.New("must be a host name, not an IP address (its last label must not be a number)")
	}
	if wildcard {
		ascii = "*." + ascii
	}
	if len(ascii) > MaxHostnameLength {
		return "", fmt.Errorf("must be at most %d characters in its ASCII form, not %d", MaxHostnameLength, len(ascii))
	}
	return ascii, nil
}

// checkLabel checks one label of an ASCII hostname.
func checkLabel(l string) error {
	if l == "" {
		return errors.New("must not have empty labels (a leading or doubled dot, or two trailing dots)")
	}
	if len(l) > MaxLabelLength {
		return fmt.Errorf("label %q must be at most %d characters", l, MaxLabelLength)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q must not start or end with a hyphen", l)
	}
	for i := range len(l) {
		if c := l[i]; !isDigit(c) && (c < 'a' || c > 'z') && c != '-' {
			return fmt.Errorf("label %q must be letters, digits and hyphens", l)
		}
	}
	if strings.HasPrefix(l, "xn--") {
		// The lookup profile already decoded and validated it; require the canonical encoding
		// too, so that one name has one stored form ("xn--abc-" decodes to plain "abc").
		u, err := idna.Lookup.ToUnicode(l)
		if err == nil {
			var back string
			back, err = idna.Lookup.ToASCII(u)
			if err == nil && back != l {
				err = errors.New("not canonical")
			}
		}
		if err != nil {
			return fmt.Errorf("label %q is not valid punycode", l)
		}
	}
	return nil
}

// numericLabel reports whether a last label would make a browser read the name as an IPv4
// address: all digits, or 0x and hex digits.
func numericLabel(l string) bool {
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		l = rest
		for i := range len(l) {
			if c := l[i]; !isDigit(c) && (c < 'a' || c > 'f') {
				return false
			}
		}
		return true
	}
	for i := range len(l) {
		if !isDigit(l[i]) {
			return false
		}
	}
	return true
}

// idnaReason shortens the idna package's errors, which start with "idna: ".
func idnaReason(err error) string {
	return strings.TrimPrefix(err.Error(), "idna: ")
}
