package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// Labels the agent reads and writes on app services, their containers and networks.
const (
	// LabelManaged marks what SkyPanel manages; the agent touches no service without it.
	LabelManaged = "skypanel.managed"
	// LabelDeployment carries the deployment id whose spec a service (and each task's
	// container) runs.
	LabelDeployment = "skypanel.deployment"
)

// restartDelay spaces restarts of a failing task.
const restartDelay = 2 * time.Second

// NetworkResult is NetworkEnsure's outcome, the network_ensure command's output.
type NetworkResult struct {
	NetworkID string `json:"network_id"`
	Created   bool   `json:"created"`
}

// NetworkEnsure creates an attachable swarm overlay network named name unless one exists.
// An existing network of that name is accepted as it is (labels and encryption are not
// changed), unless it is not a swarm overlay: then the name is taken by something else and
// that is an error. encrypted asks for IPsec encryption; whether the kernels can carry it is
// the control plane's decision (from the nodes' reports), so it is created as asked.
func (e *Engine) NetworkEnsure(ctx context.Context, name string, labels map[string]string, encrypted bool) (NetworkResult, error) {
	if name == "" {
		return NetworkResult{}, errors.New("network ensure: the network name is required")
	}
	for attempt := 0; ; attempt++ {
		n, found, err := e.findNetwork(ctx, name)
		if err != nil {
			return NetworkResult{}, fmt.Errorf("network ensure %s: %w", name, err)
		}
		if found {
			// Swarm fills the driver in only once its allocator got to the network, so an
			// empty one is a swarm network just created.
			if n.Scope != "swarm" || (n.Driver != "" && n.Driver != "overlay") || n.Ingress || !n.Attachable {
				return NetworkResult{}, fmt.Errorf("network ensure %s: a network of that name exists (driver %q, scope %q, attachable %t, ingress %t); want an attachable swarm overlay",
					name, n.Driver, n.Scope, n.Attachable, n.Ingress)
			}
			return NetworkResult{NetworkID: n.ID}, nil
		}
		opts := network.CreateOptions{Driver: "overlay", Scope: "swarm", Attachable: true, Labels: maps.Clone(labels)}
		if encrypted {
			opts.Options = map[string]string{"encrypted": ""}
		}
		res, err := e.cli.NetworkCreate(ctx, name, opts)
		if err == nil {
			return NetworkResult{NetworkID: res.ID, Created: true}, nil
		}
		// Another manager (or a concurrent call) may have created it in between.
		if attempt == 0 && (isConflict(err) || strings.Contains(err.Error(), "already exists")) {
			continue
		}
		return NetworkResult{}, fmt.Errorf("network ensure %s: %w", name, err)
	}
}

// findNetwork returns the network named exactly name (a name filter matches substrings).
func (e *Engine) findNetwork(ctx context.Context, name string) (network.Summary, bool, error) {
	list, err := e.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return network.Summary{}, false, err
	}
	for _, n := range list {
		if n.Name != name {
			continue
		}
		return n, true, nil
	}
	return network.Summary{}, false, nil
}

// ServiceResult is ServiceApply's outcome, the service_apply command's output.
type ServiceResult struct {
	ServiceID string `json:"service_id"`
	// Changed is false when the service already carried the deployment.
	Changed bool `json:"changed"`
	// ImageDigest is the digest the service's image is pinned to ("sha256:..."), empty when
	// the image was not resolved (see ServiceApply).
	ImageDigest string `json:"image_digest,omitempty"`
}

// ServiceApply creates the app service req describes, or updates it to req. It is
// idempotent per deployment: a service that already carries req's deployment id (or rolled
// back from it) is left alone, so a command repeated after a lost acknowledgement has no
// second effect. It refuses a spec without the skypanel.managed=true label and an existing
// service of that name without it: the agent never takes over a service it does not manage.
//
// An image given by tag is pinned to the digest its registry gives for it now (resolveDigest),
// so every replica runs the same image; a locally built or loaded image, or one whose registry
// does not answer, runs by its tag.
func (e *Engine) ServiceApply(ctx context.Context, req *agentv1.ServiceApply) (ServiceResult, error) {
	name := req.GetServiceName()
	spec, err := ServiceSpec(req)
	if err != nil {
		return ServiceResult{}, err
	}
	digest := e.resolveDigest(ctx, req.GetImage(), req.GetRegistryAuth())
	if digest != "" {
		spec.TaskTemplate.ContainerSpec.Image = req.GetImage() + "@" + digest
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		svc, _, err := e.cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
		if client.IsErrNotFound(err) {
			res, err := e.cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{
				EncodedRegistryAuth: req.GetRegistryAuth(), QueryRegistry: false,
			})
			if err != nil {
				if isConflict(err) || strings.Contains(err.Error(), "already exists") {
					lastErr = err
					continue // created in between: inspect again
				}
				return ServiceResult{}, fmt.Errorf("apply service %s: create: %w", name, err)
			}
			return ServiceResult{ServiceID: res.ID, Changed: true, ImageDigest: digest}, nil
		}
		if err != nil {
			return ServiceResult{}, fmt.Errorf("apply service %s: inspect: %w", name, err)
		}
		if svc.Spec.Labels[LabelManaged] != "true" {
			return ServiceResult{}, fmt.Errorf("apply service %s: a service of that name exists without the %s=true label; refusing to change it", name, LabelManaged)
		}
		if carries(svc, req.GetDeploymentId()) {
			return ServiceResult{ServiceID: svc.ID, ImageDigest: pinnedDigest(svc, req.GetDeploymentId())}, nil
		}
		_, err = e.cli.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{
			EncodedRegistryAuth: req.GetRegistryAuth(), QueryRegistry: false,
		})
		if err == nil {
			return ServiceResult{ServiceID: svc.ID, Changed: true, ImageDigest: digest}, nil
		}
		if !isOutOfSequence(err) {
			return ServiceResult{}, fmt.Errorf("apply service %s: update: %w", name, err)
		}
		lastErr = err
	}
	return ServiceResult{}, fmt.Errorf("apply service %s: %w", name, lastErr)
}

// digestTimeout bounds asking a registry for an image's digest.
const digestTimeout = 10 * time.Second

// resolveDigest returns the digest the image's registry gives for image now, or "" when the
// image names its digest already, exists on this engine without one (built or loaded here, as
// in tests: no registry knows it) or its registry does not answer within digestTimeout (the
// service then runs the tag, as Docker does when it cannot resolve one).
func (e *Engine) resolveDigest(ctx context.Context, image, registryAuth string) string {
	if strings.Contains(image, "@") {
		return ""
	}
	if local, err := e.cli.ImageInspect(ctx, image); err == nil && len(local.RepoDigests) == 0 {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, digestTimeout)
	defer cancel()
	d, err := e.cli.DistributionInspect(ctx, image, registryAuth)
	if err != nil {
		return ""
	}
	return d.Descriptor.Digest.String()
}

// pinnedDigest is the digest in the image of svc's spec that carries deployment, "" if none.
func pinnedDigest(svc swarm.Service, deployment string) string {
	spec := svc.Spec
	if spec.Labels[LabelDeployment] != deployment && svc.PreviousSpec != nil {
		spec = *svc.PreviousSpec
	}
	if spec.TaskTemplate.ContainerSpec == nil {
		return ""
	}
	_, digest, _ := strings.Cut(spec.TaskTemplate.ContainerSpec.Image, "@")
	return digest
}

// carries reports whether svc was already given deployment: its spec carries it, or Swarm
// rolled it back after applying it (then its previous spec carries it, and applying it again
// would undo the rollback).
func carries(svc swarm.Service, deployment string) bool {
	if svc.Spec.Labels[LabelDeployment] == deployment {
		return true
	}
	if svc.UpdateStatus == nil || svc.PreviousSpec == nil {
		return false
	}
	switch svc.UpdateStatus.State {
	case swarm.UpdateStateRollbackStarted, swarm.UpdateStateRollbackPaused, swarm.UpdateStateRollbackCompleted:
		return svc.PreviousSpec.Labels[LabelDeployment] == deployment
	}
	return false
}

// ServiceSpec renders the Swarm service spec of req, after checking it. The spec is built
// from nothing but req's fields, and the schema has none for privileges, capabilities,
// mounts, host networking or published ports, so a tenant's workload can get none of them.
func ServiceSpec(req *agentv1.ServiceApply) (swarm.ServiceSpec, error) {
	name := req.GetServiceName()
	switch {
	case name == "":
		return swarm.ServiceSpec{}, errors.New("apply service: service_name is required")
	case req.GetDeploymentId() == "":
		return swarm.ServiceSpec{}, fmt.Errorf("apply service %s: deployment_id is required", name)
	case req.GetImage() == "":
		return swarm.ServiceSpec{}, fmt.Errorf("apply service %s: image is required", name)
	case req.GetLabels()[LabelManaged] != "true":
		return swarm.ServiceSpec{}, fmt.Errorf("apply service %s: labels must hold %s=true", name, LabelManaged)
	case req.GetReplicas() < 0:
		return swarm.ServiceSpec{}, fmt.Errorf("apply service %s: replicas %d: must not be negative", name, req.GetReplicas())
	case req.GetCpuMillis() < 0 || req.GetMemoryBytes() < 0:
		return swarm.ServiceSpec{}, fmt.Errorf("apply service %s: cpu_millis and memory_bytes must not be negative", name)
	}
	labels := maps.Clone(req.GetLabels())
	labels[LabelDeployment] = req.GetDeploymentId()

	cs := &swarm.ContainerSpec{
		Image:   req.GetImage(),
		Labels:  maps.Clone(labels),
		Command: slices.Clone(req.GetCommand()),
		Env:     slices.Clone(req.GetEnv()),
	}
	if hc := req.GetHealthCheck(); len(hc.GetCommand()) > 0 {
		cs.Healthcheck = &container.HealthConfig{
			Test:        append([]string{"CMD"}, hc.GetCommand()...),
			Interval:    ms(hc.GetIntervalMs()),
			Timeout:     ms(hc.GetTimeoutMs()),
			StartPeriod: ms(hc.GetStartPeriodMs()),
			Retries:     int(hc.GetRetries()),
		}
	}
	var resources *swarm.ResourceRequirements
	if req.GetCpuMillis() > 0 || req.GetMemoryBytes() > 0 {
		nano := req.GetCpuMillis() * 1_000_000
		resources = &swarm.ResourceRequirements{
			Limits:       &swarm.Limit{NanoCPUs: nano, MemoryBytes: req.GetMemoryBytes()},
			Reservations: &swarm.Resources{NanoCPUs: nano, MemoryBytes: req.GetMemoryBytes()},
		}
	}
	var networks []swarm.NetworkAttachmentConfig
	if req.GetNetwork() != "" {
		networks = []swarm.NetworkAttachmentConfig{{Target: req.GetNetwork()}}
	}
	replicas := uint64(req.GetReplicas())
	delay := restartDelay
	failure := swarm.UpdateFailureActionPause
	if req.GetRollbackOnFailure() {
		failure = swarm.UpdateFailureActionRollback
	}
	monitor := ms(req.GetMonitorMs())
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			Resources:     resources,
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay},
			Networks:      networks,
			ForceUpdate:   req.GetForceUpdate(),
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{
			Parallelism: 1, Order: swarm.UpdateOrderStartFirst, FailureAction: failure,
			Monitor: monitor, MaxFailureRatio: 0,
		},
		RollbackConfig: &swarm.UpdateConfig{
			Parallelism: 1, Order: swarm.UpdateOrderStartFirst, FailureAction: swarm.UpdateFailureActionPause,
			Monitor: monitor, MaxFailureRatio: 0,
		},
		// dnsrr: nothing depends on IPVS, which some kernels lack; no published ports.
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}, nil
}

// ServiceRemoveResult is ServiceRemove's outcome, the service_remove command's output.
type ServiceRemoveResult struct {
	// Removed is false when there was no such service.
	Removed bool `json:"removed"`
}

// ServiceRemove removes the app service named name. A missing service is already removed;
// a service of that name without the skypanel.managed=true label is refused.
func (e *Engine) ServiceRemove(ctx context.Context, name string) (ServiceRemoveResult, error) {
	if name == "" {
		return ServiceRemoveResult{}, errors.New("remove service: service_name is required")
	}
	svc, _, err := e.cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if client.IsErrNotFound(err) {
		return ServiceRemoveResult{}, nil
	}
	if err != nil {
		return ServiceRemoveResult{}, fmt.Errorf("remove service %s: inspect: %w", name, err)
	}
	if svc.Spec.Labels[LabelManaged] != "true" {
		return ServiceRemoveResult{}, fmt.Errorf("remove service %s: it lacks the %s=true label; refusing to remove it", name, LabelManaged)
	}
	if err := e.cli.ServiceRemove(ctx, svc.ID); err != nil && !client.IsErrNotFound(err) {
		return ServiceRemoveResult{}, fmt.Errorf("remove service %s: %w", name, err)
	}
	return ServiceRemoveResult{Removed: true}, nil
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

func isConflict(err error) bool { return errdefs.IsConflict(err) }
