package server

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func serveDownloads(t *testing.T, dir, publicURL string) *httptest.Server {
	t.Helper()
	h := downloads(dir, publicURL)
	mux := http.NewServeMux()
	mux.Handle("GET /downloads/", h)
	mux.Handle("GET /setup-worker.sh", h)
	srv := httptest.NewServer(withDeadlines(mux))
	t.Cleanup(srv.Close)
	return srv
}

func fetchDownload(t *testing.T, method, url string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), resp.Header
}

func sha256Hex(data string) string {
	s := sha256.Sum256([]byte(data))
	return hex.EncodeToString(s[:])
}

func TestSetupWorkerScriptCarriesThePublicURL(t *testing.T) {
	srv := serveDownloads(t, t.TempDir(), "https://panel.example.com/")
	code, body, hdr := fetchDownload(t, http.MethodGet, srv.URL+"/setup-worker.sh")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, hdr.Get("Content-Type"), "shellscript")
	require.True(t, strings.HasPrefix(body, "#!/bin/sh\n"))
	require.Contains(t, body, "PUBLIC_URL='https://panel.example.com'\n")
	require.NotContains(t, body, "@@SKYPANEL_PUBLIC_URL@@")
}

func TestSetupWorkerScriptQuotesAURLWithASingleQuote(t *testing.T) {
	srv := serveDownloads(t, t.TempDir(), "https://panel.example.com/it's")
	_, body, _ := fetchDownload(t, http.MethodGet, srv.URL+"/setup-worker.sh")
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	// The assignment line, run by sh, yields the URL unchanged.
	var line string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "PUBLIC_URL=") {
			line = l
			break
		}
	}
	out, err := exec.Command("sh", "-c", line+"; printf %s \"$PUBLIC_URL\"").Output()
	require.NoError(t, err)
	require.Equal(t, "https://panel.example.com/it's", string(out))
}

func TestBinariesAreServedWithChecksumsThatFollowTheFile(t *testing.T) {
	dir := t.TempDir()
	// `make build` writes bin/skypanel-agent for this machine; other architectures are
	// named in full.
	agent := filepath.Join(dir, "skypanel-agent")
	require.NoError(t, os.WriteFile(agent, []byte("agent v1"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "skypanel-installer-linux-arm64"), []byte("installer arm64"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret.key"), []byte("private"), 0o600))
	srv := serveDownloads(t, dir, "http://127.0.0.1:8080")

	if runtime.GOOS == "linux" {
		name := "skypanel-agent-linux-" + runtime.GOARCH
		code, body, hdr := fetchDownload(t, http.MethodGet, srv.URL+"/downloads/"+name)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "agent v1", body)
		require.Equal(t, "application/octet-stream", hdr.Get("Content-Type"))

		code, body, _ = fetchDownload(t, http.MethodGet, srv.URL+"/downloads/"+name+".sha256")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, sha256Hex("agent v1")+"  "+name+"\n", body)

		// A rebuilt binary gets a new checksum (the cache follows size and mtime).
		require.NoError(t, os.WriteFile(agent, []byte("agent v2, longer"), 0o755))
		later := time.Now().Add(time.Minute)
		require.NoError(t, os.Chtimes(agent, later, later))
		_, body, _ = fetchDownload(t, http.MethodGet, srv.URL+"/downloads/"+name+".sha256")
		require.Equal(t, sha256Hex("agent v2, longer")+"  "+name+"\n", body)

		code, body, hdr = fetchDownload(t, http.MethodHead, srv.URL+"/downloads/"+name)
		require.Equal(t, http.StatusOK, code)
		require.Empty(t, body)
		require.Equal(t, "16", hdr.Get("Content-Length"))
	}

	code, body, _ := fetchDownload(t, http.MethodGet, srv.URL+"/downloads/skypanel-installer-linux-arm64")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "installer arm64", body)
	_, body, _ = fetchDownload(t, http.MethodGet, srv.URL+"/downloads/skypanel-installer-linux-arm64.sha256")
	require.Equal(t, sha256Hex("installer arm64")+"  skypanel-installer-linux-arm64\n", body)

	for _, path := range []string{
		"/downloads/skypanel-agent-linux-riscv64", // not built
		"/downloads/secret.key",
		"/downloads/skypanel-agent",
		"/downloads/skypanel-agent-linux-..%2fsecret.key",
		"/downloads/",
	} {
		code, _, _ := fetchDownload(t, http.MethodGet, srv.URL+path)
		require.Equal(t, http.StatusNotFound, code, path)
	}
}

func TestDownloadsRefuseOtherMethods(t *testing.T) {
	h := downloads(t.TempDir(), "http://x")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/setup-worker.sh", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// fakeInstaller records how setup-worker.sh called it.
const fakeInstaller = `#!/bin/sh
printf '%s\n' "$@" >"$(dirname "$0")/installer.args"
`

// runSetupWorker runs the script as the dashboard's one-liner does:
// curl -fsSL URL/setup-worker.sh | sh -s -- ARGS.
func runSetupWorker(t *testing.T, scriptURL string, args ...string) (string, error) {
	t.Helper()
	line := "curl -fsSL " + scriptURL + " | dash -s --"
	for _, a := range args {
		line += " '" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	out, err := exec.Command("sh", "-c", line).CombinedOutput()
	return string(out), err
}

func TestSetupWorkerDownloadsChecksInstallsAndRunsTheInstaller(t *testing.T) {
	for _, c := range []string{"dash", "curl", "sha256sum"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is missing", c)
		}
	}
	if os.Geteuid() != 0 || runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skip("setup-worker.sh needs root on linux/amd64 or arm64")
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "skypanel-agent"), []byte("#!/bin/sh\necho agent\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "skypanel-installer"), []byte(fakeInstaller), 0o755))
	// The public URL is known only once the server listens: serve a handler made for it.
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	h = downloads(dir, srv.URL)

	prefix := t.TempDir()
	out, err := runSetupWorker(t, srv.URL+"/setup-worker.sh", "--token", "spen.pin.se'cret", "--agent-url", "https://10.77.0.1:8443",
		"--advertise-addr", "10.77.0.11", "--labels", "zone=a,edge=true", "--prefix", prefix, "--skip-docker-install")
	require.NoError(t, err, out)
	agent, err := os.ReadFile(filepath.Join(prefix, "skypanel-agent"))
	require.NoError(t, err)
	require.Equal(t, "#!/bin/sh\necho agent\n", string(agent))
	args, err := os.ReadFile(filepath.Join(prefix, "installer.args"))
	require.NoError(t, err)
	require.Equal(t, strings.Join([]string{"--public-url", srv.URL, "--prefix", prefix,
		"--token", "spen.pin.se'cret", "--agent-url", "https://10.77.0.1:8443", "--advertise-addr", "10.77.0.11",
		"--labels", "zone=a,edge=true", "--skip-docker-install"}, "\n")+"\n", string(args))

	// --uninstall runs the installed installer with --uninstall and removes it.
	out, err = runSetupWorker(t, srv.URL+"/setup-worker.sh", "--uninstall", "--purge", "--prefix", prefix)
	require.NoError(t, err, out)
	args, err = os.ReadFile(filepath.Join(prefix, "installer.args"))
	require.NoError(t, err)
	require.Contains(t, string(args), "--uninstall\n--purge\n")
	require.NoFileExists(t, filepath.Join(prefix, "skypanel-installer"))
}

func TestSetupWorkerRefusesABinaryWithTheWrongChecksum(t *testing.T) {
	for _, c := range []string{"dash", "curl", "sha256sum"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is missing", c)
		}
	}
	if os.Geteuid() != 0 || runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("setup-worker.sh needs root on linux/amd64 here")
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "skypanel-agent"), []byte("genuine"), 0o755))
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/downloads/skypanel-agent-linux-amd64" {
			w.Write([]byte("tampered")) // the .sha256 still describes the genuine file
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	h = downloads(dir, srv.URL)
	prefix := t.TempDir()
	out, err := runSetupWorker(t, srv.URL+"/setup-worker.sh", "--token", "spen.a.b", "--prefix", prefix)
	require.Error(t, err)
	require.Contains(t, out, "checksum mismatch for skypanel-agent-linux-amd64")
	require.NoFileExists(t, filepath.Join(prefix, "skypanel-agent"))
}
