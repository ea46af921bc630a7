package workload

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func TestServiceName(t *testing.T) {
	const id = "0f8fad5b-d9cb-469f-a165-70867728950e"
	want := "sp-app-0f8fad5bd9cb469fa16570867728950e"
	t.Run("a UUID becomes sp-app- and its hex", func(t *testing.T) {
		require.Equal(t, want, ServiceName(id))
	})
	t.Run("case and dashes do not matter", func(t *testing.T) {
		require.Equal(t, want, ServiceName("0F8FAD5B-D9CB-469F-A165-70867728950E"))
		require.Equal(t, want, ServiceName("0f8fad5bd9cb469fa16570867728950e"))
	})
	t.Run("the name is a DNS label and parses back", func(t *testing.T) {
		require.Regexp(t, dnsLabel, want)
		got, ok := ParseServiceName(want)
		require.True(t, ok)
		require.Equal(t, id, got)
	})
	t.Run("a non-UUID gets a stable marked name that does not parse back", func(t *testing.T) {
		name := ServiceName("../../etc; rm -rf")
		require.Equal(t, name, ServiceName("../../etc; rm -rf"))
		require.Regexp(t, `^sp-app-x[0-9a-f]{31}$`, name)
		require.Regexp(t, dnsLabel, name)
		_, ok := ParseServiceName(name)
		require.False(t, ok)
	})
	t.Run("other services do not parse", func(t *testing.T) {
		for _, name := range []string{"", "web", "sp-org-0f8fad5bd9cb469fa16570867728950e", "sp-app-0F8FAD5BD9CB469FA16570867728950E", "sp-app-0f8fad5b"} {
			_, ok := ParseServiceName(name)
			require.False(t, ok, name)
		}
	})
}

func TestNetworkName(t *testing.T) {
	const id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	name := NetworkName(id)
	require.Equal(t, "sp-org-7c9e6679742540de944be07fc1f90ae7", name)
	require.Regexp(t, dnsLabel, name)
	got, ok := ParseNetworkName(name)
	require.True(t, ok)
	require.Equal(t, id, got)
	_, ok = ParseNetworkName(ServiceName(id))
	require.False(t, ok, "a service name is not a network name")
}

func TestServiceLabels(t *testing.T) {
	require.Equal(t, map[string]string{
		"skypanel.app":          "a",
		"skypanel.organization": "o",
		"skypanel.deployment":   "d",
		"skypanel.release":      "12",
		"skypanel.managed":      "true",
	}, ServiceLabels("o", "a", "d", 12))
}
