package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// Prefixes of the Swarm object names the platform gives tenant workloads. Both names are
// valid DNS labels (39 characters), so they also work as hostnames inside the overlay
// network.
const (
	ServiceNamePrefix = "sp-app-"
	NetworkNamePrefix = "sp-org-"
)

// Labels the platform sets on the Swarm services, containers and networks it creates, so the
// agent can find and report its own objects and leave anything else on a node alone.
const (
	// LabelApp holds the app's UUID.
	LabelApp = "skypanel.app"
	// LabelOrganization holds the organization's UUID (on services, containers and the
	// organization's network).
	LabelOrganization = "skypanel.organization"
	// LabelDeployment holds the UUID of the deployment that last applied the service.
	LabelDeployment = "skypanel.deployment"
	// LabelRelease holds the release's version number in decimal ("3"), so a replica reports
	// which release it runs without a lookup.
	LabelRelease = "skypanel.release"
	// LabelManaged is set to ManagedValue on every object the platform manages.
	LabelManaged = "skypanel.managed"
	// ManagedValue is LabelManaged's value.
	ManagedValue = "true"
)

// ServiceName returns the Swarm service name of an app: "sp-app-" and the 32 lower-case hex
// digits of its UUID, e.g. "sp-app-0f8fad5bd9cb469fa16570867728950e". The name is stable for
// the app's life and unique across organizations, which the app's own name is not.
//
// appID is a UUID in any case, with or without dashes (as the store returns it). Anything
// else still gets a stable, valid name rather than one built from untrusted text: "x" and 31
// hex digits of its SHA-256, which ParseServiceName refuses and an operator can spot.
func ServiceName(appID string) string {
	return ServiceNamePrefix + idHex(appID)
}

// NetworkName returns the Swarm overlay network name of an organization: "sp-org-" and the
// 32 lower-case hex digits of its UUID. Each organization has one attachable network; its apps
// and the edge join it. Non-UUIDs are treated as ServiceName treats them.
func NetworkName(orgID string) string {
	return NetworkNamePrefix + idHex(orgID)
}

// ServiceLabels returns the labels of an app's service and of its containers.
func ServiceLabels(orgID, appID, deploymentID string, releaseVersion int32) map[string]string {
	return map[string]string{
		LabelApp:          appID,
		LabelOrganization: orgID,
		LabelDeployment:   deploymentID,
		LabelRelease:      strconv.Itoa(int(releaseVersion)),
		LabelManaged:      ManagedValue,
	}
}

// ParseServiceName returns the app UUID (in its dashed, lower-case form) that ServiceName
// made name from, and false for names of services the platform does not name.
func ParseServiceName(name string) (appID string, ok bool) {
	return parseName(name, ServiceNamePrefix)
}

// ParseNetworkName returns the organization UUID that NetworkName made name from, and false
// for other networks.
func ParseNetworkName(name string) (orgID string, ok bool) {
	return parseName(name, NetworkNamePrefix)
}

func parseName(name, prefix string) (string, bool) {
	h, ok := strings.CutPrefix(name, prefix)
	if !ok || !isLowerHex32(h) {
		return "", false
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], true
}

// idHex returns the 32 lower-case hex digits of a UUID, or "x" and 31 of a SHA-256 of
// anything else.
func idHex(id string) string {
	h := strings.ToLower(id)
	if len(h) == 36 && h[8] == '-' && h[13] == '-' && h[18] == '-' && h[23] == '-' {
		h = h[0:8] + h[9:13] + h[14:18] + h[19:23] + h[24:36]
	}
	if isLowerHex32(h) {
		return h
	}
	sum := sha256.Sum256([]byte(id))
	return "x" + hex.EncodeToString(sum[:16])[:31]
}

func isLowerHex32(s string) bool {
	return len(s) == 32 && isLowerHex(s)
}
