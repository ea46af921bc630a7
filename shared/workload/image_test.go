package workload

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseImageRef(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     ImageRef
		str      string
		familiar string
	}{
		{"an official image gets docker.io and library/", "nginx",
			ImageRef{Repository: "nginx"}, "docker.io/library/nginx", "nginx"},
		{"a tag is kept", "nginx:1.27",
			ImageRef{Repository: "nginx", Tag: "1.27"}, "docker.io/library/nginx:1.27", "nginx:1.27"},
		{"a user image on Docker Hub gets docker.io only", "bitnami/redis:7.2-debian-12",
			ImageRef{Repository: "bitnami/redis", Tag: "7.2-debian-12"}, "docker.io/bitnami/redis:7.2-debian-12", "bitnami/redis:7.2-debian-12"},
		{"a registry with a port", "registry.example.com:5000/team/api:v2",
			ImageRef{Registry: "registry.example.com:5000", Repository: "team/api", Tag: "v2"},
			"registry.example.com:5000/team/api:v2", "registry.example.com:5000/team/api:v2"},
		{"localhost is a registry", "localhost/app",
			ImageRef{Registry: "localhost", Repository: "app"}, "localhost/app", "localhost/app"},
		{"a digest", "ghcr.io/org/app@" + testDigest,
			ImageRef{Registry: "ghcr.io", Repository: "org/app", Digest: testDigest}, "ghcr.io/org/app@" + testDigest, "ghcr.io/org/app@" + testDigest},
		{"a tag and a digest", "nginx:1.27@" + testDigest,
			ImageRef{Repository: "nginx", Tag: "1.27", Digest: testDigest}, "docker.io/library/nginx:1.27@" + testDigest, "nginx:1.27@" + testDigest},
		{"docker.io written out is familiar again", "docker.io/library/nginx",
			ImageRef{Registry: "docker.io", Repository: "library/nginx"}, "docker.io/library/nginx", "nginx"},
		{"index.docker.io is Docker Hub", "index.docker.io/foo/bar",
			ImageRef{Registry: "index.docker.io", Repository: "foo/bar"}, "docker.io/foo/bar", "foo/bar"},
		{"library/ stays when more path follows", "library/a/b",
			ImageRef{Repository: "library/a/b"}, "docker.io/library/a/b", "library/a/b"},
		{"a Docker Hub repository that looks like a registry keeps docker.io", "docker.io/example.com/app",
			ImageRef{Registry: "docker.io", Repository: "example.com/app"}, "docker.io/example.com/app", "docker.io/example.com/app"},
		{"all separators", "x/a.b_c__d-e---f",
			ImageRef{Repository: "x/a.b_c__d-e---f"}, "docker.io/x/a.b_c__d-e---f", "x/a.b_c__d-e---f"},
		{"a first component with a dot is a registry", "a.b/c",
			ImageRef{Registry: "a.b", Repository: "c"}, "a.b/c", "a.b/c"},
		{"an upper-case registry and tag", "Registry.Example.COM/app:V1_x",
			ImageRef{Registry: "Registry.Example.COM", Repository: "app", Tag: "V1_x"}, "Registry.Example.COM/app:V1_x", "Registry.Example.COM/app:V1_x"},
		{"an IPv4 registry", "10.0.0.1:5000/app",
			ImageRef{Registry: "10.0.0.1:5000", Repository: "app"}, "10.0.0.1:5000/app", "10.0.0.1:5000/app"},
		{"a 128-character tag", "app:" + strings.Repeat("t", 128),
			ImageRef{Repository: "app", Tag: strings.Repeat("t", 128)}, "docker.io/library/app:" + strings.Repeat("t", 128), "app:" + strings.Repeat("t", 128)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseImageRef(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.str, got.String())
			require.Equal(t, tt.familiar, got.Familiar())
		})
	}
}

func TestParseImageRefRefuses(t *testing.T) {
	tests := []struct {
		name, in, reason string
	}{
		{"an empty reference", "", "must not be empty"},
		{"whitespace", "nginx :1", "spaces"},
		{"a trailing newline", "nginx\n", "spaces"},
		{"an upper-case repository", "Nginx", "must be lower-case"},
		{"an upper-case first component, which Docker would take as a registry", "MyOrg/app", "must be lower-case"},
		{"two dots", "foo..bar", "separated by one of"},
		{"a leading separator", "-foo", "separated by one of"},
		{"a trailing separator", "foo_", "separated by one of"},
		{"three underscores", "a___b", "separated by one of"},
		{"mixed separators", "a._b", "separated by one of"},
		{"an empty path component", "foo//bar", "empty path components"},
		{"a trailing slash", "foo/", "empty path components"},
		{"a registry and nothing else", "example.com/", "empty path components"},
		{"an empty tag", "nginx:", "tag must not be empty"},
		{"a tag starting with a period", "nginx:.1", "tag"},
		{"a tag with a slash-free colon", "nginx:1:2", "separated by one of"},
		{"a tag over 128 characters", "nginx:" + strings.Repeat("t", 129), "at most 128"},
		{"a short digest", "nginx@sha256:abc", "digest"},
		{"an upper-case digest", "nginx@" + strings.ToUpper(testDigest), "digest"},
		{"another digest algorithm", "nginx@sha512:" + strings.Repeat("a", 128), "digest"},
		{"two digests", "nginx@" + testDigest + "@" + testDigest, "digest"},
		{"a digest alone", "@" + testDigest, "must name a repository"},
		{"an image ID", strings.Repeat("a", 64), "image ID"},
		{"a registry port out of range", "example.com:70000/app", "port from 1 to 65535"},
		{"a registry port of zero", "example.com:0/app", "port from 1 to 65535"},
		{"a registry with an empty label", "example..com/app", "host name"},
		{"a registry label ending in a hyphen", "example-.com/app", "host name"},
		{"an IPv6 registry", "[::1]:5000/app", "IPv6"},
		{"a scheme", "https://example.com/app", "registry \"https:\""},
		{"non-ASCII", "nginx\u00e9", "separated by one of"},
		{"a name over 255 characters", strings.Repeat("a", 250), "at most 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseImageRef(tt.in)
			require.ErrorContains(t, err, tt.reason)
		})
	}
}

func TestParseImageRefNameLengthCountsTheDefaults(t *testing.T) {
	// 237 + len("docker.io/library/") = 255.
	_, err := ParseImageRef(strings.Repeat("a", 237))
	require.NoError(t, err)
	_, err = ParseImageRef(strings.Repeat("a", 238))
	require.ErrorContains(t, err, "at most 255")
}

// FuzzParseImageRef checks that whatever ParseImageRef accepts is made only of what the
// grammar allows, and that its String and Familiar forms parse back to the same reference.
func FuzzParseImageRef(f *testing.F) {
	f.Add("nginx:1.27")
	f.Add("registry.example.com:5000/team/api@" + testDigest)
	f.Add("docker.io/example.com/app")
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseImageRef(s)
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		require.NotEmpty(t, ref.Repository)
		require.Equal(t, strings.ToLower(ref.Repository), ref.Repository, "accepted an upper-case repository")
		require.NotContains(t, ref.Repository, "..")
		require.NotContains(t, ref.Repository, "//")
		require.LessOrEqual(t, len(ref.Name()), MaxImageNameLength)
		require.LessOrEqual(t, len(ref.Tag), MaxTagLength)
		require.False(t, strings.ContainsAny(s, " \t\r\n"), "accepted whitespace")

		norm := ref.String()
		again, err := ParseImageRef(norm)
		require.NoError(t, err, "the normalised form %q does not parse", norm)
		require.Equal(t, norm, again.String(), "normalising is not idempotent")
		require.Equal(t, ref.Domain(), again.Domain())
		require.Equal(t, ref.Tag, again.Tag)
		require.Equal(t, ref.Digest, again.Digest)

		fam, err := ParseImageRef(ref.Familiar())
		require.NoError(t, err, "the familiar form %q does not parse", ref.Familiar())
		require.Equal(t, norm, fam.String(), "the familiar form %q means something else", ref.Familiar())
	})
}
