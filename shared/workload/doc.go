// Package workload holds the rules a tenant workload must satisfy and the names it runs
// under: parsers and validators for image references, hostnames, app and environment
// variable names, health checks and .env files; ValidateSpec, which applies all of them (and
// the platform's isolation rules) to an app spec; and the Swarm service, network and label
// names the platform gives apps.
//
// The control plane's API calls it to refuse bad input with InvalidArgument before anything
// is stored, and the agent calls it again before it applies a service, so a spec that somehow
// skipped the API still cannot run privileged, on the host network, with the Docker socket,
// with host mounts, capabilities, devices or host ports.
//
// Everything here is pure logic: no I/O, no state, and no imports from controlplane/ or agent/.
// Validators return reasons ("must be ...") rather than full messages, so the caller can name
// the field in its own request; ValidateSpec returns FieldErrors naming the field paths of
// the API (spec.image, spec.env[3].name, ...).
package workload
