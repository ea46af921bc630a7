package workload

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
)

// Spec limits beyond those of the individual fields. The counts and lengths repeat the
// schema's, so the agent enforces them too.
const (
	MaxEnvVars = 500
	// MaxEnvTotalBytes bounds all of an app's "NAME=value" strings together, keeping them
	// well under Linux's 2 MiB limit on a process's arguments and environment, past which
	// the container could not start. A kept secret's value is not in the spec the API
	// checks, so only the agent, which sees every value, counts it.
	MaxEnvTotalBytes     = 1 << 20
	MaxCommandItems      = 64
	MaxCommandItemLength = 4096
	MaxMounts            = 32
	MaxMountPathLength   = 4096
	MaxRegistryUsername  = 256
	MaxRegistryPassword  = 4096
)

// Limits are what the app's plan allows.
type Limits struct {
	// MaxReplicas is the most replicas the plan allows (plans.max_replicas, at least 1).
	MaxReplicas int32
}

// ValidateSpec checks an app spec before it is stored (the API) and before it runs (the
// agent), and returns every rule it breaks, or nil. Field paths start with "spec.".
//
// Beyond the checks of ParseImageRef, ValidatePort, ValidateEnvName and
// ValidateHealthCheck, it enforces the platform's isolation of tenant workloads: no
// privileged mode, no network mode (apps run on their organization's overlay network), no
// capabilities, devices or host ports, and only tmpfs mounts, never the Docker socket.
// It also requires unique environment variable names, keep only on secret variables, at most
// limits.MaxReplicas replicas, and registry credentials that name the image's registry (or
// none, meaning the image's registry) and have a username whenever they have a password.
func ValidateSpec(spec *appv1.AppSpec, limits Limits) FieldErrors {
	if spec == nil {
		return FieldErrors{{Field: "spec", Reason: "is required"}}
	}
	var errs FieldErrors

	ref, err := ParseImageRef(spec.GetImage())
	imageOK := err == nil
	if err != nil {
		errs.add("spec.image", "%s", err)
	}
	if p := spec.GetPort(); p != 0 && ValidatePort(p) != nil {
		errs.add("spec.port", "must be 0 (not reachable through the edge) or a port from 1 to 65535, not %d", p)
	}
	validateEnv(&errs, spec.GetEnv())
	if n := len(spec.GetCommand()); n > MaxCommandItems {
		errs.add("spec.command", "must have at most %d items, not %d", MaxCommandItems, n)
	}
	for i, item := range spec.GetCommand() {
		if reason := commandItemReason(item, MaxCommandItemLength); reason != "" {
			errs.add(fmt.Sprintf("spec.command[%d]", i), "%s", reason)
		}
	}
	errs = append(errs, ValidateHealthCheck(spec.GetHealthCheck()).under("spec.health_check")...)
	switch r := spec.GetReplicas(); {
	case r < 0:
		errs.add("spec.replicas", "must not be negative")
	case r > limits.MaxReplicas:
		errs.add("spec.replicas", "at most %d %s on this plan", max(limits.MaxReplicas, 0), plural(limits.MaxReplicas, "replica", "replicas"))
	}
	if imageOK {
		validateRegistryAuth(&errs, spec.GetRegistryAuth(), ref.Domain())
	} else {
		validateRegistryAuth(&errs, spec.GetRegistryAuth(), "")
	}

	if spec.GetPrivileged() {
		errs.add("spec.privileged", "privileged containers are not allowed")
	}
	switch nm := spec.GetNetworkMode(); {
	case strings.EqualFold(nm, "host"):
		errs.add("spec.network_mode", "host networking is not allowed: apps run on their organization's network")
	case nm != "":
		errs.add("spec.network_mode", "network mode %q is not allowed: leave it empty, apps run on their organization's network", nm)
	}
	validateMounts(&errs, spec.GetMounts())
	if len(spec.GetCapAdd()) > 0 {
		errs.add("spec.cap_add", "adding capabilities is not allowed")
	}
	if len(spec.GetDevices()) > 0 {
		errs.add("spec.devices", "host devices are not allowed")
	}
	if len(spec.GetPublishedPorts()) > 0 {
		errs.add("spec.published_ports", "host ports are not allowed: traffic reaches apps through the edge")
	}
	return errs
}

func validateEnv(errs *FieldErrors, env []*appv1.EnvVar) {
	if n := len(env); n > MaxEnvVars {
		errs.add("spec.env", "must have at most %d variables, not %d", MaxEnvVars, n)
	}
	first := map[string]int{}
	total := 0
	for i, v := range env {
		field := fmt.Sprintf("spec.env[%d]", i)
		name := v.GetName()
		if err := ValidateEnvName(name); err != nil {
			errs.add(field+".name", "%s", err)
		} else if j, dup := first[name]; dup {
			errs.add(field+".name", "%q is already set by spec.env[%d]", name, j)
		} else {
			first[name] = i
		}
		if v.GetKeep() {
			if !v.GetSecret() {
				errs.add(field+".keep", "is only valid for a secret variable (it keeps the stored secret value)")
			}
			continue // the value is ignored
		}
		value := v.GetValue()
		if n := utf8.RuneCountInString(value); n > MaxEnvValueLength {
			errs.add(field+".value", "must be at most %d characters, not %d", MaxEnvValueLength, n)
		}
		if strings.ContainsRune(value, 0) {
			errs.add(field+".value", "must not contain NUL characters")
		}
		total += len(name) + len(value) + 2 // "NAME=value\x00"
	}
	if total > MaxEnvTotalBytes {
		errs.add("spec.env", "all variables together must be at most %d bytes, not %d", MaxEnvTotalBytes, total)
	}
}

// validateRegistryAuth checks the credentials for a private registry. imageDomain is the
// image's registry, or "" when the image did not parse.
func validateRegistryAuth(errs *FieldErrors, ra *appv1.RegistryAuth, imageDomain string) {
	if ra == nil {
		return
	}
	if server := ra.GetServer(); server != "" {
		switch {
		case strings.Contains(server, "://") || strings.Contains(server, "/"):
			errs.add("spec.registry_auth.server", "must be a host name with an optional port, without a scheme or path, as in registry.example.com:5000")
		case len(server) > MaxHostnameLength:
			errs.add("spec.registry_auth.server", "must be at most %d characters", MaxHostnameLength)
		case validateHostPort(server) != nil:
			errs.add("spec.registry_auth.server", "%s", validateHostPort(server))
		case imageDomain != "" && registryDomain(server) != registryDomain(imageDomain):
			errs.add("spec.registry_auth.server", "must be the image's registry (%s) or empty: credentials are only sent to the registry the image comes from", imageDomain)
		}
	}
	if utf8.RuneCountInString(ra.GetUsername()) > MaxRegistryUsername {
		errs.add("spec.registry_auth.username", "must be at most %d characters", MaxRegistryUsername)
	}
	if utf8.RuneCountInString(ra.GetPassword()) > MaxRegistryPassword {
		errs.add("spec.registry_auth.password", "must be at most %d characters", MaxRegistryPassword)
	}
	if ra.GetPassword() != "" && ra.GetUsername() == "" {
		errs.add("spec.registry_auth.username", "is required when a password is given")
	}
}

// registryDomain folds the names Docker Hub goes by, and letter case, so that registries
// compare equal when they are the same.
func registryDomain(s string) string {
	s = strings.ToLower(s)
	switch s {
	case legacyDockerHubDomain, "registry-1.docker.io", "registry.hub.docker.com":
		return dockerHubDomain
	}
	return s
}

func validateMounts(errs *FieldErrors, mounts []*appv1.Mount) {
	if n := len(mounts); n > MaxMounts {
		errs.add("spec.mounts", "must have at most %d mounts, not %d", MaxMounts, n)
	}
	targets := map[string]int{}
	for i, m := range mounts {
		field := fmt.Sprintf("spec.mounts[%d]", i)
		src, tgt := m.GetSource(), m.GetTarget()
		socket := false
		for _, p := range []struct{ field, path string }{{".source", src}, {".target", tgt}} {
			if isDockerSocket(p.path) {
				errs.add(field+p.field, "mounting the Docker socket (%s) is not allowed: it would give the app control of the node", p.path)
				socket = true
			}
		}
		if socket {
			continue
		}
		switch typ := m.GetType(); typ {
		case "tmpfs":
		case "bind":
			errs.add(field+".type", "bind mounts are not allowed: apps may not reach the node's files (use tmpfs for scratch space)")
			continue
		case "volume":
			errs.add(field+".type", "volume mounts are not allowed (use tmpfs for scratch space)")
			continue
		default:
			errs.add(field+".type", "must be \"tmpfs\", not %q: only tmpfs mounts are allowed", typ)
			continue
		}
		if src != "" {
			errs.add(field+".source", "must be empty for a tmpfs mount")
		}
		if reason := tmpfsTargetReason(tgt); reason != "" {
			errs.add(field+".target", "%s", reason)
			continue
		}
		if j, dup := targets[tgt]; dup {
			errs.add(field+".target", "%s is already mounted by spec.mounts[%d]", tgt, j)
			continue
		}
		targets[tgt] = i
	}
}

// tmpfsTargetReason says why a tmpfs mount target is refused, or "".
func tmpfsTargetReason(t string) string {
	switch {
	case t == "":
		return "is required"
	case len(t) > MaxMountPathLength:
		return fmt.Sprintf("must be at most %d characters", MaxMountPathLength)
	case strings.IndexFunc(t, unicode.IsControl) >= 0:
		return "must not contain control characters"
	case !path.IsAbs(t):
		return fmt.Sprintf("must be an absolute path, not %q", t)
	case path.Clean(t) != t:
		return fmt.Sprintf("must be a clean path: %s, not %q", path.Clean(t), t)
	case t == "/":
		return "must not be / (the container's root)"
	}
	return ""
}

// isDockerSocket reports whether a mount path names a Docker Engine socket:
// /var/run/docker.sock, /run/docker.sock, or anything else ending in docker.sock.
func isDockerSocket(p string) bool {
	p = strings.TrimRight(strings.ToLower(strings.TrimSpace(p)), "/")
	return strings.HasSuffix(p, "docker.sock")
}

func plural(n int32, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
