package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"skypanel/scripts"
)

// downloadWriteDeadline replaces the unary deadline withDeadlines sets: a node on a slow link
// needs longer than that for a binary of tens of megabytes.
const downloadWriteDeadline = 15 * time.Minute

// downloads serves what setup-worker needs: /setup-worker.sh with publicURL filled in, and
// /downloads/NAME-linux-ARCH (+ .sha256) from dir. A binary is dir/NAME-linux-ARCH, or for
// this machine's own architecture the plain dir/NAME that `make build` writes. Checksums are
// computed on first request and cached until the file's size or mtime changes.
// Mount it at "GET /downloads/" and "GET /setup-worker.sh".
func downloads(dir string, publicURL string) http.Handler {
	quoted := strings.ReplaceAll(strings.TrimRight(publicURL, "/"), "'", `'\''`)
	script := strings.ReplaceAll(scripts.SetupWorker, scripts.PublicURLPlaceholder, quoted)
	d := &downloadHandler{dir: dir, script: script, sums: map[string]cachedSum{}}
	return d
}

type downloadHandler struct {
	dir    string
	script string

	mu   sync.Mutex
	sums map[string]cachedSum // by file path
}

type cachedSum struct {
	size    int64
	modTime time.Time
	hex     string
}

func (d *downloadHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed\n", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == "/setup-worker.sh" {
		w.Header().Set("Content-Type", "text/x-shellscript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "setup-worker.sh", time.Time{}, strings.NewReader(d.script))
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/downloads/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	base, wantSum := strings.CutSuffix(name, ".sha256")
	file := d.file(base)
	if file == "" {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(file)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	if wantSum {
		sum, err := d.sum(file, f, info)
		if err != nil {
			http.Error(w, "cannot read "+base+"\n", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// The format sha256sum -c reads.
		body := sum + "  " + base + "\n"
		http.ServeContent(w, r, name, info.ModTime(), strings.NewReader(body))
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(downloadWriteDeadline))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+base+`"`)
	http.ServeContent(w, r, base, info.ModTime(), f)
}

// file maps NAME-linux-ARCH to the file serving it, or "" when the name is not one we serve
// (which also keeps every other file of dir private).
func (d *downloadHandler) file(name string) string {
	// The programs a new node fetches.
	for _, prog := range []string{"skypanel-agent", "skypanel-installer"} {
		arch, ok := strings.CutPrefix(name, prog+"-linux-")
		if !ok || arch == "" || strings.ContainsAny(arch, `/\.`) || path.Base(arch) != arch {
			continue
		}
		if p := filepath.Join(d.dir, name); isFile(p) {
			return p
		}
		if runtime.GOOS == "linux" && arch == runtime.GOARCH {
			if p := filepath.Join(d.dir, prog); isFile(p) {
				return p
			}
		}
		return ""
	}
	return ""
}

func isFile(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular()
}

// sum returns the file's SHA-256, from the cache while its size and mtime are unchanged.
func (d *downloadHandler) sum(file string, f *os.File, info os.FileInfo) (string, error) {
	d.mu.Lock()
	c, ok := d.sums[file]
	d.mu.Unlock()
	if ok && c.size == info.Size() && c.modTime.Equal(info.ModTime()) {
		return c.hex, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum %s: %w", file, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	d.mu.Lock()
	d.sums[file] = cachedSum{size: info.Size(), modTime: info.ModTime(), hex: sum}
	d.mu.Unlock()
	return sum, nil
}
