package workload

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
)

var testLimits = Limits{MaxReplicas: 3}

// validSpec returns a spec that passes every rule, using every field tenants may set.
func validSpec() *appv1.AppSpec {
	return &appv1.AppSpec{
		Image: "registry.example.com/team/api:1.2",
		Port:  8080,
		Env: []*appv1.EnvVar{
			{Name: "DATABASE_URL", Value: "postgres://db/app"},
			{Name: "API_KEY", Secret: true, Keep: true},
			{Name: "EMPTY_SECRET", Secret: true},
		},
		Command: []string{"/app", "serve"},
		HealthCheck: &appv1.HealthCheck{
			Command: []string{"/app", "-healthcheck"}, Interval: durationpb.New(10 * time.Second),
		},
		Replicas:     3,
		RegistryAuth: &appv1.RegistryAuth{Server: "registry.example.com", Username: "ci", Password: "pw"},
		Mounts:       []*appv1.Mount{{Type: "tmpfs", Target: "/tmp"}, {Type: "tmpfs", Target: "/var/cache/app"}},
	}
}

// checkSpec applies change to a valid spec and requires exactly the given errors.
func checkSpec(t *testing.T, change func(*appv1.AppSpec), want ...FieldError) {
	t.Helper()
	spec := validSpec()
	change(spec)
	got := ValidateSpec(spec, testLimits)
	if len(want) == 0 {
		require.Empty(t, got)
		return
	}
	require.Equal(t, FieldErrors(want), got)
}

func TestValidateSpecAcceptsAValidSpec(t *testing.T) {
	require.Nil(t, ValidateSpec(validSpec(), testLimits))
	require.NoError(t, ValidateSpec(validSpec(), testLimits).Err())
	require.Nil(t, ValidateSpec(&appv1.AppSpec{Image: "nginx"}, testLimits), "a spec with only an image is valid")
}

func TestValidateSpecRequiresASpec(t *testing.T) {
	require.Equal(t, FieldErrors{{"spec", "is required"}}, ValidateSpec(nil, testLimits))
}

func TestValidateSpecListsEveryError(t *testing.T) {
	errs := ValidateSpec(&appv1.AppSpec{Image: "", Port: -1, Privileged: true, NetworkMode: "host"}, testLimits)
	fields := []string{}
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	require.Equal(t, []string{"spec.image", "spec.port", "spec.privileged", "spec.network_mode"}, fields)
	require.ErrorContains(t, errs.Err(), "spec.image: must not be empty; spec.port:")
}

func TestValidateSpecRefusesPrivileged(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.Privileged = true },
		FieldError{"spec.privileged", "privileged containers are not allowed"})
}

func TestValidateSpecRefusesNetworkModes(t *testing.T) {
	t.Run("host is named", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) { s.NetworkMode = "host" },
			FieldError{"spec.network_mode", "host networking is not allowed: apps run on their organization's network"})
		checkSpec(t, func(s *appv1.AppSpec) { s.NetworkMode = "HOST" },
			FieldError{"spec.network_mode", "host networking is not allowed: apps run on their organization's network"})
	})
	for _, mode := range []string{"bridge", "none", "container:abc", "sp-org-other"} {
		t.Run(mode+" is refused", func(t *testing.T) {
			checkSpec(t, func(s *appv1.AppSpec) { s.NetworkMode = mode },
				FieldError{"spec.network_mode", `network mode "` + mode + `" is not allowed: leave it empty, apps run on their organization's network`})
		})
	}
}

func TestValidateSpecRefusesBindMounts(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) {
		s.Mounts = append(s.Mounts, &appv1.Mount{Type: "bind", Source: "/etc", Target: "/host-etc"})
	}, FieldError{"spec.mounts[2].type", "bind mounts are not allowed: apps may not reach the node's files (use tmpfs for scratch space)"})
}

func TestValidateSpecRefusesVolumeMounts(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) {
		s.Mounts = []*appv1.Mount{{Type: "volume", Source: "data", Target: "/data"}}
	}, FieldError{"spec.mounts[0].type", "volume mounts are not allowed (use tmpfs for scratch space)"})
}

func TestValidateSpecRefusesOtherMountTypes(t *testing.T) {
	for _, typ := range []string{"", "npipe", "cluster", "TMPFS", "Bind"} {
		t.Run(typ, func(t *testing.T) {
			checkSpec(t, func(s *appv1.AppSpec) {
				s.Mounts = []*appv1.Mount{{Type: typ, Target: "/data"}}
			}, FieldError{"spec.mounts[0].type", `must be "tmpfs", not "` + typ + `": only tmpfs mounts are allowed`})
		})
	}
}

func TestValidateSpecRefusesTheDockerSocket(t *testing.T) {
	for _, sock := range []string{"/var/run/docker.sock", "/run/docker.sock", "/home/u/.docker/run/docker.sock", "/run/user/1000/docker.sock/", "/VAR/RUN/DOCKER.SOCK"} {
		t.Run("as the source: "+sock, func(t *testing.T) {
			checkSpec(t, func(s *appv1.AppSpec) {
				s.Mounts = []*appv1.Mount{{Type: "bind", Source: sock, Target: "/var/run/docker.sock"}}
			},
				FieldError{"spec.mounts[0].source", "mounting the Docker socket (" + sock + ") is not allowed: it would give the app control of the node"},
				FieldError{"spec.mounts[0].target", "mounting the Docker socket (/var/run/docker.sock) is not allowed: it would give the app control of the node"},
			)
		})
	}
	t.Run("as the target of any mount type", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) {
			s.Mounts = []*appv1.Mount{{Type: "tmpfs", Target: "/run/docker.sock"}}
		}, FieldError{"spec.mounts[0].target", "mounting the Docker socket (/run/docker.sock) is not allowed: it would give the app control of the node"})
	})
	t.Run("as the source of a volume", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) {
			s.Mounts = []*appv1.Mount{{Type: "volume", Source: "docker.sock", Target: "/sock"}}
		}, FieldError{"spec.mounts[0].source", "mounting the Docker socket (docker.sock) is not allowed: it would give the app control of the node"})
	})
}

func TestValidateSpecChecksTmpfsMounts(t *testing.T) {
	tests := []struct {
		name  string
		mount *appv1.Mount
		want  FieldError
	}{
		{"a source is refused", &appv1.Mount{Type: "tmpfs", Source: "/host", Target: "/data"},
			FieldError{"spec.mounts[0].source", "must be empty for a tmpfs mount"}},
		{"a target is required", &appv1.Mount{Type: "tmpfs"},
			FieldError{"spec.mounts[0].target", "is required"}},
		{"a relative target is refused", &appv1.Mount{Type: "tmpfs", Target: "data"},
			FieldError{"spec.mounts[0].target", `must be an absolute path, not "data"`}},
		{"an unclean target is refused", &appv1.Mount{Type: "tmpfs", Target: "/data/../etc/"},
			FieldError{"spec.mounts[0].target", `must be a clean path: /etc, not "/data/../etc/"`}},
		{"the root is refused", &appv1.Mount{Type: "tmpfs", Target: "/"},
			FieldError{"spec.mounts[0].target", "must not be / (the container's root)"}},
		{"a control character is refused", &appv1.Mount{Type: "tmpfs", Target: "/da\nta"},
			FieldError{"spec.mounts[0].target", "must not contain control characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSpec(t, func(s *appv1.AppSpec) { s.Mounts = []*appv1.Mount{tt.mount} }, tt.want)
		})
	}
	t.Run("a target mounted twice is refused", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) {
			s.Mounts = append(s.Mounts, &appv1.Mount{Type: "tmpfs", Target: "/tmp"})
		}, FieldError{"spec.mounts[2].target", "/tmp is already mounted by spec.mounts[0]"})
	})
	t.Run("more than 32 mounts are refused", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) {
			s.Mounts = nil
			for i := range 33 {
				s.Mounts = append(s.Mounts, &appv1.Mount{Type: "tmpfs", Target: "/m" + strings.Repeat("x", i)})
			}
		}, FieldError{"spec.mounts", "must have at most 32 mounts, not 33"})
	})
}

func TestValidateSpecRefusesCapabilities(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.CapAdd = []string{"NET_ADMIN"} },
		FieldError{"spec.cap_add", "adding capabilities is not allowed"})
}

func TestValidateSpecRefusesDevices(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.Devices = []string{"/dev/kvm"} },
		FieldError{"spec.devices", "host devices are not allowed"})
}

func TestValidateSpecRefusesHostPorts(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) {
		s.PublishedPorts = []*appv1.PublishedPort{{HostPort: 80, ContainerPort: 8080}}
	}, FieldError{"spec.published_ports", "host ports are not allowed: traffic reaches apps through the edge"})
}

func TestValidateSpecLimitsReplicas(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.Replicas = 0 })
	checkSpec(t, func(s *appv1.AppSpec) { s.Replicas = 4 },
		FieldError{"spec.replicas", "at most 3 replicas on this plan"})
	checkSpec(t, func(s *appv1.AppSpec) { s.Replicas = -1 },
		FieldError{"spec.replicas", "must not be negative"})
	spec := validSpec()
	spec.Replicas = 2
	require.Equal(t, FieldErrors{{"spec.replicas", "at most 1 replica on this plan"}}, ValidateSpec(spec, Limits{MaxReplicas: 1}))
}

func TestValidateSpecChecksTheImage(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.Image = "Team/API" },
		FieldError{"spec.image", `repository "Team/API" must be lower-case`})
	checkSpec(t, func(s *appv1.AppSpec) { s.Image = "" },
		FieldError{"spec.image", "must not be empty"})
}

func TestValidateSpecChecksThePort(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.Port = 0 })
	checkSpec(t, func(s *appv1.AppSpec) { s.Port = 65536 },
		FieldError{"spec.port", "must be 0 (not reachable through the edge) or a port from 1 to 65535, not 65536"})
}

func TestValidateSpecChecksEnvNames(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.Env[1].Name = "BAD-NAME" },
		FieldError{"spec.env[1].name", `"BAD-NAME" must be a letter or underscore, then letters, digits and underscores`})
	checkSpec(t, func(s *appv1.AppSpec) { s.Env[0].Name = "SKYPANEL_APP" },
		FieldError{"spec.env[0].name", `"SKYPANEL_APP" is reserved: the platform sets the SKYPANEL_* variables`})
}

func TestValidateSpecRequiresUniqueEnvNames(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) {
		s.Env = append(s.Env, &appv1.EnvVar{Name: "DATABASE_URL", Value: "other"})
	}, FieldError{"spec.env[3].name", `"DATABASE_URL" is already set by spec.env[0]`})
	checkSpec(t, func(s *appv1.AppSpec) {
		s.Env = append(s.Env, &appv1.EnvVar{Name: "database_url", Value: "other"})
	}) // names are case-sensitive
}

func TestValidateSpecChecksEnvValues(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.Env[0].Value = strings.Repeat("é", MaxEnvValueLength) })
	checkSpec(t, func(s *appv1.AppSpec) { s.Env[0].Value = strings.Repeat("é", MaxEnvValueLength+1) },
		FieldError{"spec.env[0].value", "must be at most 32768 characters, not 32769"})
	checkSpec(t, func(s *appv1.AppSpec) { s.Env[0].Value = "a\x00b" },
		FieldError{"spec.env[0].value", "must not contain NUL characters"})
	checkSpec(t, func(s *appv1.AppSpec) {
		s.Env = nil
		for i := range 40 {
			s.Env = append(s.Env, &appv1.EnvVar{Name: "V" + strings.Repeat("_", i), Value: strings.Repeat("x", 30000)})
		}
	}, FieldError{"spec.env", "all variables together must be at most 1048576 bytes, not 1200900"})
	checkSpec(t, func(s *appv1.AppSpec) {
		s.Env = nil
		for i := range 501 {
			s.Env = append(s.Env, &appv1.EnvVar{Name: "V" + strings.Repeat("_", i%256) + strings.Repeat("A", i/256)})
		}
	}, FieldError{"spec.env", "must have at most 500 variables, not 501"})
}

func TestValidateSpecAllowsKeepOnlyOnSecrets(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.Env[0].Keep = true },
		FieldError{"spec.env[0].keep", "is only valid for a secret variable (it keeps the stored secret value)"})
	checkSpec(t, func(s *appv1.AppSpec) { s.Env[1].Value = "ignored\x00" }) // a kept secret's value is ignored
}

func TestValidateSpecChecksTheCommand(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.Command = nil })
	checkSpec(t, func(s *appv1.AppSpec) { s.Command = []string{"/app", ""} },
		FieldError{"spec.command[1]", "must not be empty"})
	checkSpec(t, func(s *appv1.AppSpec) { s.Command = []string{strings.Repeat("x", 4097)} },
		FieldError{"spec.command[0]", "must be at most 4096 characters"})
	checkSpec(t, func(s *appv1.AppSpec) { s.Command = make([]string, 65) },
		append([]FieldError{{"spec.command", "must have at most 64 items, not 65"}}, func() []FieldError {
			var errs []FieldError
			for i := range 65 {
				errs = append(errs, FieldError{fmt.Sprintf("spec.command[%d]", i), "must not be empty"})
			}
			return errs
		}()...)...)
}

func TestValidateSpecChecksTheHealthCheck(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) { s.HealthCheck.Interval = durationpb.New(time.Millisecond) },
		FieldError{"spec.health_check.interval", "must be from 1s to 1h (or unset for the default), not 1ms"})
	checkSpec(t, func(s *appv1.AppSpec) { s.HealthCheck.Command = []string{""} },
		FieldError{"spec.health_check.command[0]", "must not be empty"})
}

func TestValidateSpecChecksRegistryAuth(t *testing.T) {
	t.Run("an empty server means the image's registry", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) { s.RegistryAuth.Server = "" })
	})
	t.Run("a server with a port", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) {
			s.Image = "registry.example.com:5000/api"
			s.RegistryAuth.Server = "Registry.Example.com:5000"
		})
	})
	t.Run("Docker Hub by any of its names", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) {
			s.Image = "team/api"
			s.RegistryAuth.Server = "index.docker.io"
		})
	})
	t.Run("a username alone keeps the stored password", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) { s.RegistryAuth.Password = "" })
	})
	t.Run("a scheme is refused", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) { s.RegistryAuth.Server = "https://registry.example.com" },
			FieldError{"spec.registry_auth.server", "must be a host name with an optional port, without a scheme or path, as in registry.example.com:5000"})
	})
	t.Run("a bad host is refused", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) { s.RegistryAuth.Server = "registry_example.com" },
			FieldError{"spec.registry_auth.server", "must be a host name with an optional port, as in registry.example.com:5000"})
		checkSpec(t, func(s *appv1.AppSpec) { s.RegistryAuth.Server = "registry.example.com:99999" },
			FieldError{"spec.registry_auth.server", "must have a port from 1 to 65535 after the colon"})
	})
	t.Run("another registry than the image's is refused", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) { s.RegistryAuth.Server = "ghcr.io" },
			FieldError{"spec.registry_auth.server", "must be the image's registry (registry.example.com) or empty: credentials are only sent to the registry the image comes from"})
	})
	t.Run("a password needs a username", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) { s.RegistryAuth.Username = "" },
			FieldError{"spec.registry_auth.username", "is required when a password is given"})
	})
	t.Run("long credentials are refused", func(t *testing.T) {
		checkSpec(t, func(s *appv1.AppSpec) {
			s.RegistryAuth.Username = strings.Repeat("u", 257)
			s.RegistryAuth.Password = strings.Repeat("p", 4097)
		},
			FieldError{"spec.registry_auth.username", "must be at most 256 characters"},
			FieldError{"spec.registry_auth.password", "must be at most 4096 characters"})
	})
}

func TestValidateSpecRefusesNilListEntries(t *testing.T) {
	checkSpec(t, func(s *appv1.AppSpec) {
		s.Env = []*appv1.EnvVar{nil}
		s.Mounts = []*appv1.Mount{nil}
	},
		FieldError{"spec.env[0].name", "must not be empty"},
		FieldError{"spec.mounts[0].type", `must be "tmpfs", not "": only tmpfs mounts are allowed`})
}
