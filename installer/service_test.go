package installer

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestSystemdUnitMatchesTheGoldenFile(t *testing.T) {
	for _, tc := range []struct {
		golden string
		params unitParams
	}{
		{"skypanel-agent.service", unitParams{Binary: "/usr/local/bin/skypanel-agent", DataDir: "/var/lib/skypanel-agent"}},
		{"skypanel-agent-docker-host.service", unitParams{Binary: "/opt/sky panel/skypanel-agent",
			DataDir: "/var/lib/skypanel-agent", DockerHost: "unix:///run/user/0/docker.sock"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := renderUnit(tc.params)
			require.NoError(t, err)
			path := filepath.Join("testdata", tc.golden)
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test ./installer -update to write it")
			require.Equal(t, string(want), string(got))
		})
	}
}

func TestSystemdQuoteKeepsSpecifiersLiteral(t *testing.T) {
	require.Equal(t, `"/a b/c"`, systemdQuote("/a b/c"))
	require.Equal(t, `"100%% \"x\" $$HOME \\n"`, systemdQuote(`100% "x" $HOME \n`))
}

// testHost is the real host with the parts a test cannot or must not touch replaced: it
// claims root, no systemd, free ports and a synchronized clock.
type testHost struct{ OSHost }

func (testHost) Geteuid() int                                          { return 0 }
func (testHost) PortFree(string, int) error                            { return nil }
func (testHost) ServerTime(context.Context, string) (time.Time, error) { return time.Now(), nil }
func (h testHost) Exists(p string) bool {
	if p == systemdRunDir || p == unitPath {
		return false
	}
	return h.OSHost.Exists(p)
}

// fakeAgent stands in for skypanel-agent: `enroll` records its arguments and writes an
// identity, `run` runs until it is terminated.
const fakeAgent = `#!/bin/sh
cmd=$1; shift
all="$*"
dir=
while [ $# -gt 0 ]; do
	case "$1" in --data-dir) dir=$2; shift ;; esac
	shift
done
case "$cmd" in
enroll)
	echo "$0 enroll $all" >>"$dir/enroll.calls"
	echo '{}' >"$dir/state.json"
	echo cert >"$dir/node.crt"
	;;
run)
	trap 'exit 0' TERM
	echo "agent running"
	while :; do sleep 0.1; done
	;;
esac
`

// fakeDocker serves /_ping on a unix socket like an Engine.
func fakeDocker(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			fmt.Fprint(w, "OK")
			return
		}
		http.NotFound(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock
}

func TestInstallEnrollsOnceKeepsTheAgentRunningAndUninstalls(t *testing.T) {
	prefix, dataDir := t.TempDir(), filepath.Join(t.TempDir(), "agent")
	require.NoError(t, os.WriteFile(filepath.Join(prefix, "skypanel-agent"), []byte(fakeAgent), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(prefix, "skypanel-installer"), []byte("#!/bin/sh\n"), 0o755))
	cfg := Config{
		Token: "spen.pin.secret", PublicURL: "https://panel.example.com", AdvertiseAddr: "10.77.0.11",
		Labels: "zone=a", DataDir: dataDir, Prefix: prefix, DockerHost: fakeDocker(t),
	}
	install := func(cfg Config) (string, error) {
		var out strings.Builder
		in, err := New(cfg, testHost{}, &out)
		require.NoError(t, err)
		err = in.Install(context.Background())
		return out.String(), err
	}
	pid := func() int {
		data, err := os.ReadFile(filepath.Join(dataDir, "agent.pid"))
		require.NoError(t, err)
		p, err := strconv.Atoi(strings.TrimSpace(string(data)))
		require.NoError(t, err)
		return p
	}
	alive := func(p int) bool { return OSHost{}.Alive(p, "skypanel-agent") }

	out, err := install(cfg)
	require.NoError(t, err, out)
	calls, err := os.ReadFile(filepath.Join(dataDir, "enroll.calls"))
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(calls), "\n"))
	require.Contains(t, string(calls), "--agent-url https://panel.example.com:8443 --token spen.pin.secret --advertise-addr 10.77.0.11")
	require.Contains(t, string(calls), "--labels zone=a")
	require.Contains(t, string(calls), "--docker-host "+cfg.DockerHost)
	first := pid()
	require.True(t, alive(first), out)
	t.Cleanup(func() { OSHost{}.Signal(first, 9) })

	// Again, as setup-worker.sh re-run on an enrolled node (no token this time): no second
	// enrollment, the same agent.
	again := cfg
	again.Token = ""
	out, err = install(again)
	require.NoError(t, err, out)
	require.Contains(t, out, "already enrolled")
	require.Contains(t, out, "runs already")
	calls, _ = os.ReadFile(filepath.Join(dataDir, "enroll.calls"))
	require.Equal(t, 1, strings.Count(string(calls), "\n"))
	require.Equal(t, first, pid())

	// A dead agent is started again.
	require.NoError(t, OSHost{}.Signal(first, 9))
	require.True(t, waitFor(t.Context(), func() bool { return !alive(first) }))
	out, err = install(again)
	require.NoError(t, err, out)
	second := pid()
	require.NotEqual(t, first, second)
	require.True(t, alive(second))
	logData, _ := os.ReadFile(filepath.Join(dataDir, "agent.log"))
	require.Contains(t, string(logData), "agent running")

	// Uninstall stops it and removes the binaries but keeps the identity; --purge deletes it.
	in, err := New(cfg, testHost{}, &strings.Builder{})
	require.NoError(t, err)
	require.NoError(t, in.Uninstall(context.Background()))
	require.False(t, alive(second))
	require.NoFileExists(t, filepath.Join(prefix, "skypanel-agent"))
	require.NoFileExists(t, filepath.Join(prefix, "skypanel-installer"))
	require.FileExists(t, filepath.Join(dataDir, "node.crt"))
	cfg.Purge = true
	in, err = New(cfg, testHost{}, &strings.Builder{})
	require.NoError(t, err)
	require.NoError(t, in.Uninstall(context.Background()))
	require.NoDirExists(t, dataDir)
}

func TestInstallWithoutTokenOnAFreshNodeExplainsWhatIsMissing(t *testing.T) {
	in, err := New(Config{DataDir: t.TempDir(), Prefix: t.TempDir()}, testHost{}, &strings.Builder{})
	require.NoError(t, err)
	require.ErrorContains(t, in.Install(context.Background()), "--token is needed")
}

func TestAnEngineThatDoesNotAnswerAtDockerHostFails(t *testing.T) {
	prefix := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(prefix, "skypanel-agent"), []byte(fakeAgent), 0o755))
	in, err := New(Config{Token: "spen.a.b", AgentURL: "https://cp:8443", DataDir: t.TempDir(), Prefix: prefix,
		DockerHost: "unix://" + filepath.Join(t.TempDir(), "none.sock")}, testHost{}, &strings.Builder{})
	require.NoError(t, err)
	require.ErrorContains(t, in.Install(context.Background()), "does not answer")
}
