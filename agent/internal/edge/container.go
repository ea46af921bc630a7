package edge

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The edge runs as a plain container (not a Swarm service: the routing mesh needs IPVS,
// which not every kernel has) made from the agent's own static binary.
const (
	// ImageRepository is the local repository of edge images; the tag is the binary's
	// SHA-256, so a new agent binary means a new image and the same binary none.
	ImageRepository = "skypanel-edge"
	// ContainerName is the edge container's default name.
	ContainerName = "skypanel-edge"
	// ContainerConfigDir is where the configuration directory is mounted (read-only).
	ContainerConfigDir = "/etc/skypanel-edge"
	binaryInImage      = "/skypanel-agent"
	specLabel          = "skypanel.edge.spec"
)

// Engine is the part of the Docker Engine API the edge's container management uses
// (*client.Client has it).
type Engine interface {
	ImageInspect(ctx context.Context, imageID string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (image.LoadResponse, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, containerID string, options container.StartOptions) error
	ContainerStop(ctx context.Context, containerID string, options container.StopOptions) error
	ContainerRemove(ctx context.Context, containerID string, options container.RemoveOptions) error
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	NetworkConnect(ctx context.Context, networkID, containerID string, config *network.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, networkID, containerID string, force bool) error
}

// EnsureImage makes sure the Engine has the edge image for the static binary at
// binaryPath (normally the running agent, os.Executable) and returns its reference,
// skypanel-edge:<sha256 of the binary>. The image has one layer holding the binary and
// is loaded directly (no registry, no Dockerfile); an image already present is kept.
// The binary must be static (CGO_ENABLED=0): the image has nothing else in it.
func EnsureImage(ctx context.Context, cli Engine, binaryPath string) (string, error) {
	bin, err := os.ReadFile(binaryPath)
	if err != nil {
		return "", fmt.Errorf("edge image: %w", err)
	}
	sum := sha256.Sum256(bin)
	ref := ImageRepository + ":" + hex.EncodeToString(sum[:])
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !client.IsErrNotFound(err) {
		return "", fmt.Errorf("edge image: inspect %s: %w", ref, err)
	}

	img, err := buildImage(bin)
	if err != nil {
		return "", fmt.Errorf("edge image: build: %w", err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", fmt.Errorf("edge image: %w", err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Write(tag, img, pw)) }()
	res, err := cli.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("edge image: load %s: %w", ref, err)
	}
	err = loadError(res.Body)
	res.Body.Close()
	pr.Close()
	if err != nil {
		return "", fmt.Errorf("edge image: load %s: %w", ref, err)
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("edge image: %s is not there after loading it: %w", ref, err)
	}
	return ref, nil
}

// buildImage makes a one-layer image: the binary at /skypanel-agent, run as
// `skypanel-agent edge`.
func buildImage(bin []byte) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed mtime keeps the layer (and so the image id) the same for the same binary.
	hdr := &tar.Header{Name: binaryInImage[1:], Mode: 0o755, Size: int64(len(bin)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerTar := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{binaryInImage, "edge"}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.title": "SkyPanel edge"}
	return mutate.ConfigFile(img, cf)
}

// loadError reads the Engine's JSON message stream of an image load and returns the
// error it reports, if any.
func loadError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
		if msg.ErrorDetail.Message != "" {
			return errors.New(msg.ErrorDetail.Message)
		}
	}
}

// ContainerOptions describe the edge container.
type ContainerOptions struct {
	// Name of the container. Default ContainerName.
	Name string
	// Image is the reference EnsureImage returned (required).
	Image string
	// ConfigDir is the host directory the agent writes the configuration into with
	// WriteConfig (required). It is mounted read-only at ContainerConfigDir.
	ConfigDir string
	// HTTPPort and HTTPSPort are the host ports published for the edge's listeners.
	// Default 80 and 443.
	HTTPPort  int
	HTTPSPort int
	// Networks are the organizations' attachable overlay networks (names or ids) the
	// edge must reach app tasks on. The container ends up attached to exactly these,
	// plus its PortNetwork.
	Networks []string
	// PortNetwork is the local bridge network the ports are published from. Default
	// "bridge", the Engine's default bridge.
	PortNetwork string
}

// EnsureContainer creates, replaces or starts the edge container so that it runs
// opts.Image with opts' ports and config mount (restart policy unless-stopped), and
// attaches it to exactly opts.Networks: missing ones are connected, ones no longer listed
// disconnected. Calling it again with the same options changes nothing.
func EnsureContainer(ctx context.Context, cli Engine, opts ContainerOptions) error {
	if opts.Image == "" || opts.ConfigDir == "" {
		return errors.New("edge container: the image and the config directory are required")
	}
	if opts.Name == "" {
		opts.Name = ContainerName
	}
	if opts.HTTPPort == 0 {
		opts.HTTPPort = 80
	}
	if opts.HTTPSPort == 0 {
		opts.HTTPSPort = 443
	}
	if opts.PortNetwork == "" {
		opts.PortNetwork = "bridge"
	}
	// Resolve the wanted networks to ids first: a missing network fails before any
	// change.
	want := map[string]string{} // id -> name
	for _, n := range opts.Networks {
		nw, err := cli.NetworkInspect(ctx, n, network.InspectOptions{})
		if err != nil {
			return fmt.Errorf("edge container: network %s: %w", n, err)
		}
		want[nw.ID] = nw.Name
	}

	cfg, hostCfg, spec := containerSpec(opts)
	cur, err := cli.ContainerInspect(ctx, opts.Name)
	create := false
	switch {
	case client.IsErrNotFound(err):
		create = true
	case err != nil:
		return fmt.Errorf("edge container: inspect %s: %w", opts.Name, err)
	case cur.Config == nil || cur.Config.Labels[specLabel] != spec:
		// Another image, ports or mount: replace the container.
		timeout := 10
		if err := cli.ContainerStop(ctx, cur.ID, container.StopOptions{Timeout: &timeout}); err != nil && !client.IsErrNotFound(err) {
			return fmt.Errorf("edge container: stop %s: %w", opts.Name, err)
		}
		if err := cli.ContainerRemove(ctx, cur.ID, container.RemoveOptions{Force: true}); err != nil && !client.IsErrNotFound(err) {
			return fmt.Errorf("edge container: remove %s: %w", opts.Name, err)
		}
		create = true
	}
	if create {
		created, err := cli.ContainerCreate(ctx, cfg, hostCfg, &network.NetworkingConfig{
			EndpointsConfig: map[string]*network.EndpointSettings{opts.PortNetwork: {}},
		}, nil, opts.Name)
		if err != nil {
			return fmt.Errorf("edge container: create %s: %w", opts.Name, err)
		}
		if cur, err = cli.ContainerInspect(ctx, created.ID); err != nil {
			return fmt.Errorf("edge container: inspect %s: %w", opts.Name, err)
		}
	}

	// Networks: connect what is missing, disconnect what is no longer wanted, leave the
	// port network alone.
	have := map[string]bool{}
	if cur.NetworkSettings != nil {
		for netName, ep := range cur.NetworkSettings.Networks {
			id := ""
			if ep != nil {
				id = ep.NetworkID
			}
			if netName == opts.PortNetwork || netName == "bridge" && opts.PortNetwork == "default" {
				continue
			}
			if _, ok := want[id]; ok && id != "" {
				have[id] = true
				continue
			}
			if err := cli.NetworkDisconnect(ctx, netName, cur.ID, true); err != nil && !client.IsErrNotFound(err) {
				return fmt.Errorf("edge container: disconnect from %s: %w", netName, err)
			}
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if have[id] {
			continue
		}
		if err := cli.NetworkConnect(ctx, id, cur.ID, &network.EndpointSettings{}); err != nil {
			return fmt.Errorf("edge container: connect to %s: %w", want[id], err)
		}
	}

	if cur.State == nil || !cur.State.Running {
		if err := cli.ContainerStart(ctx, cur.ID, container.StartOptions{}); err != nil {
			return fmt.Errorf("edge container: start %s: %w", opts.Name, err)
		}
	}
	return nil
}

// containerSpec returns the container's configuration and a digest of what, when it
// changes, requires a new container.
func containerSpec(opts ContainerOptions) (*container.Config, *container.HostConfig, string) {
	httpPort, httpsPort := nat.Port("80/tcp"), nat.Port("443/tcp")
	cfg := &container.Config{
		Image: opts.Image,
		Cmd: []string{"--config", ContainerConfigDir + "/" + ConfigFile,
			"--http", ":80", "--https", ":443"},
		ExposedPorts: nat.PortSet{httpPort: {}, httpsPort: {}},
		Labels:       map[string]string{},
	}
	hostCfg := &container.HostConfig{
		Binds:         []string{opts.ConfigDir + ":" + ContainerConfigDir + ":ro"},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		PortBindings: nat.PortMap{
			httpPort:  {{HostPort: strconv.Itoa(opts.HTTPPort)}},
			httpsPort: {{HostPort: strconv.Itoa(opts.HTTPSPort)}},
		},
		NetworkMode: container.NetworkMode(opts.PortNetwork),
		// The edge needs nothing but its binary, its config and its ports.
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		CapAdd:         []string{"NET_BIND_SERVICE"},
		SecurityOpt:    []string{"no-new-privileges"},
	}
	b, _ := json.Marshal([]any{cfg.Image, cfg.Cmd, hostCfg.Binds, hostCfg.PortBindings, hostCfg.NetworkMode,
		hostCfg.RestartPolicy, hostCfg.CapAdd, hostCfg.ReadonlyRootfs})
	sum := sha256.Sum256(b)
	spec := hex.EncodeToString(sum[:16])
	cfg.Labels[specLabel] = spec
	return cfg, hostCfg, spec
}
