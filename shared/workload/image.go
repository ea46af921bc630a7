package workload

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Image reference limits, from Docker's reference grammar.
const (
	// MaxImageNameLength bounds the fully qualified name (registry/repository, after the
	// docker.io and library/ defaults are added), as Docker does.
	MaxImageNameLength = 255
	// MaxTagLength bounds a tag.
	MaxTagLength = 128
)

const (
	dockerHubDomain       = "docker.io"
	legacyDockerHubDomain = "index.docker.io"
	officialRepoPrefix    = "library/"
)

// ImageRef is a parsed image reference such as "registry.example.com:5000/team/api:1.2" or
// "nginx@sha256:...". Its fields hold what was written: Registry is empty when the reference
// names none (Docker Hub), and Repository is "nginx", not "library/nginx". String and
// Familiar add or remove those defaults.
type ImageRef struct {
	// Registry is the host and optional port, e.g. "ghcr.io" or "localhost:5000"; empty for
	// Docker Hub.
	Registry string
	// Repository is the path inside the registry, e.g. "team/api".
	Repository string
	// Tag is empty when none was given; Docker then pulls "latest" unless Digest is set.
	Tag string
	// Digest is "sha256:" and 64 lower-case hex digits, or empty.
	Digest string
}

// ParseImageRef parses an image reference in Docker's grammar:
//
//	reference  := name [":" tag] ["@" digest]
//	name       := [registry "/"] component ("/" component)*
//	registry   := host-label ("." host-label)* [":" port]
//	host-label := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
//	component  := [a-z0-9]+ (("." | "_" | "__" | "-"+) [a-z0-9]+)*
//	tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//	digest     := "sha256:" [a-f0-9]{64}
//
// The first path component is the registry when it contains "." or ":" or is "localhost".
// Docker also takes a first component with upper-case letters as a registry ("MyOrg/app"
// pulls from a host named MyOrg); ParseImageRef refuses it as an upper-case repository
// instead, which is what the user almost always meant. IPv6 registry addresses and digest
// algorithms other than sha256 are not accepted, nor, as in Docker, a bare 64-digit hex
// string (an image ID). The name, qualified with the docker.io and library/ defaults, is at
// most 255 characters.
//
// Errors are reasons fit for a FieldError ("tag ... must be ...").
func ParseImageRef(s string) (ImageRef, error) {
	if s == "" {
		return ImageRef{}, errors.New("must not be empty")
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			return ImageRef{}, errors.New("must not contain spaces or control characters")
		}
	}
	if len(s) == 64 && isLowerHex(s) {
		return ImageRef{}, errors.New("must name a repository, not a 64-digit image ID")
	}
	var ref ImageRef
	name := s
	if before, after, found := strings.Cut(s, "@"); found {
		name = before
		if err := validateDigest(after); err != nil {
			return ImageRef{}, err
		}
		ref.Digest = after
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		if err := validateTag(name[i+1:]); err != nil {
			return ImageRef{}, err
		}
		ref.Tag = name[i+1:]
		name = name[:i]
	}
	if name == "" {
		return ImageRef{}, errors.New("must name a repository, as in nginx or registry.example.com/team/app")
	}
	if first, rest, found := strings.Cut(name, "/"); found && looksLikeRegistry(first) {
		if err := validateRegistry(first); err != nil {
			return ImageRef{}, err
		}
		ref.Registry = first
		name = rest
	}
	if err := validateRepository(name); err != nil {
		return ImageRef{}, err
	}
	ref.Repository = name
	if n := len(ref.Name()); n > MaxImageNameLength {
		return ImageRef{}, fmt.Errorf("name must be at most %d characters (with registry), not %d", MaxImageNameLength, n)
	}
	return ref, nil
}

// Domain returns the registry the image is pulled from: Registry, or "docker.io" for Docker
// Hub (also when written as index.docker.io).
func (r ImageRef) Domain() string {
	if r.Registry == "" || r.Registry == legacyDockerHubDomain {
		return dockerHubDomain
	}
	return r.Registry
}

// Name returns the fully qualified name without tag or digest, e.g.
// "docker.io/library/nginx".
func (r ImageRef) Name() string {
	domain := r.Domain()
	repo := r.Repository
	if domain == dockerHubDomain && !strings.Contains(repo, "/") {
		repo = officialRepoPrefix + repo
	}
	return domain + "/" + repo
}

// String returns the normalised reference: the fully qualified name, then the tag and the
// digest if any, e.g. "docker.io/library/nginx:1.27". No tag is added when none was given.
// ParseImageRef accepts it and gives back a reference with the same String.
func (r ImageRef) String() string {
	return r.Name() + r.suffix()
}

// Familiar returns the short form people write: the docker.io/ and library/ defaults left
// out where that does not change what the reference means, e.g. "nginx:1.27".
func (r ImageRef) Familiar() string {
	if r.Domain() != dockerHubDomain {
		return r.Registry + "/" + r.Repository + r.suffix()
	}
	repo := r.Repository
	if rest, ok := strings.CutPrefix(repo, officialRepoPrefix); ok && !strings.Contains(rest, "/") {
		repo = rest
	}
	// "docker.io/example.com/app" must keep its domain: without it, example.com would be read
	// as the registry.
	if first, _, found := strings.Cut(repo, "/"); found && looksLikeRegistry(first) {
		return dockerHubDomain + "/" + repo + r.suffix()
	}
	return repo + r.suffix()
}

func (r ImageRef) suffix() string {
	s := ""
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// looksLikeRegistry says whether the first component of a name is a registry rather than a
// path component.
func looksLikeRegistry(first string) bool {
	return strings.ContainsAny(first, ".:") || first == "localhost"
}

func validateDigest(d string) error {
	const msg = "digest %q must be \"sha256:\" followed by 64 lower-case hex digits"
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 || !isLowerHex(hexPart) {
		return fmt.Errorf(msg, d)
	}
	return nil
}

func validateTag(tag string) error {
	if tag == "" {
		return errors.New("tag must not be empty (leave out the colon for the default tag)")
	}
	if len(tag) > MaxTagLength {
		return fmt.Errorf("tag must be at most %d characters", MaxTagLength)
	}
	for i := range len(tag) {
		c := tag[i]
		ok := isAlnum(c) || c == '_' || (i > 0 && (c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("tag %q must be letters, digits, underscores, periods and hyphens, not starting with a period or hyphen", tag)
		}
	}
	return nil
}

// validateRegistry checks host[:port], where host is dot-separated components of letters,
// digits and hyphens (not starting or ending with a hyphen). Docker allows upper-case here.
func validateRegistry(reg string) error {
	if strings.HasPrefix(reg, "[") {
		return fmt.Errorf("registry %q: IPv6 registry addresses are not supported", reg)
	}
	if err := validateHostPort(reg); err != nil {
		return fmt.Errorf("registry %q %w", reg, err)
	}
	return nil
}

// validateHostPort checks host[:port] as Docker's reference grammar does. Its error reads
// after the value, as in "registry \"x\" must be ...".
func validateHostPort(s string) error {
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return errors.New("must have a port from 1 to 65535 after the colon")
		}
	}
	for _, c := range strings.Split(host, ".") {
		if c == "" || c[0] == '-' || c[len(c)-1] == '-' {
			return errors.New("must be a host name with an optional port, as in registry.example.com:5000")
		}
		for i := range len(c) {
			if !isAlnum(c[i]) && c[i] != '-' {
				return errors.New("must be a host name with an optional port, as in registry.example.com:5000")
			}
		}
	}
	return nil
}

func validateRepository(repo string) error {
	for _, comp := range strings.Split(repo, "/") {
		if comp == "" {
			return fmt.Errorf("repository %q must not have empty path components (a leading, trailing or doubled /)", repo)
		}
		if strings.ToLower(comp) != comp {
			return fmt.Errorf("repository %q must be lower-case", repo)
		}
		if !validPathComponent(comp) {
			return fmt.Errorf("repository path component %q must be lower-case letters and digits, separated by one of . _ __ or hyphens", comp)
		}
	}
	return nil
}

// validPathComponent reports whether comp is [a-z0-9]+ ((. | _ | __ | -+) [a-z0-9]+)*.
func validPathComponent(comp string) bool {
	i := 0
	for {
		start := i
		for i < len(comp) && (isDigit(comp[i]) || (comp[i] >= 'a' && comp[i] <= 'z')) {
			i++
		}
		if i == start {
			return false // a separator at the start, at the end, or two in a row
		}
		if i == len(comp) {
			return true
		}
		switch sep := comp[i]; {
		case sep == '.':
			i++
		case sep == '_':
			i++
			if i < len(comp) && comp[i] == '_' {
				i++
			}
		case sep == '-':
			for i < len(comp) && comp[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; !isDigit(c) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
