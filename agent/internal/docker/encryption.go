package docker

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// OverlayEncryption reports whether this kernel can carry Docker's encrypted overlay
// traffic, which needs IPsec ESP (the esp4 module) and the XFRM netlink interface. It is a
// heuristic read from the file system under root ("/" on a real host), in this order:
//
//  1. esp4 is loaded (/sys/module/esp4 or /proc/modules): yes.
//  2. The kernel configuration (/proc/config.gz or /boot/config-<release>) says
//     CONFIG_INET_ESP=y, or =m with the module file present under /lib/modules/<release>,
//     and CONFIG_XFRM_USER is not disabled: yes; otherwise no.
//  3. Without a configuration: esp4 listed in modules.builtin or present as a module
//     file: yes; otherwise no.
//
// Where the answer is wrong the per-cluster setting still decides; a false "no" only keeps
// encryption off.
func OverlayEncryption(root string) bool {
	p := func(s string) string { return filepath.Join(root, s) }
	if _, err := os.Stat(p("/sys/module/esp4")); err == nil {
		return true
	}
	if b, err := os.ReadFile(p("/proc/modules")); err == nil && hasLinePrefix(b, "esp4 ") {
		return true
	}
	release := ""
	if b, err := os.ReadFile(p("/proc/sys/kernel/osrelease")); err == nil {
		release = strings.TrimSpace(string(b))
	}
	modules := p(filepath.Join("/lib/modules", release))
	moduleFile := func() bool {
		m, _ := filepath.Glob(filepath.Join(modules, "kernel/net/ipv4/esp4.ko*"))
		return release != "" && len(m) > 0
	}
	if cfg, ok := kernelConfig(p, release); ok {
		if v := configValue(cfg, "CONFIG_XFRM_USER"); v != "y" && v != "m" {
			return false
		}
		switch configValue(cfg, "CONFIG_INET_ESP") {
		case "y":
			return true
		case "m":
			return moduleFile()
		default:
			return false
		}
	}
	if b, err := os.ReadFile(filepath.Join(modules, "modules.builtin")); err == nil && release != "" &&
		bytes.Contains(b, []byte("/esp4.ko")) {
		return true
	}
	return moduleFile()
}

func kernelConfig(p func(string) string, release string) ([]byte, bool) {
	if f, err := os.Open(p("/proc/config.gz")); err == nil {
		defer f.Close()
		if z, err := gzip.NewReader(f); err == nil {
			if b, err := io.ReadAll(z); err == nil {
				return b, true
			}
		}
	}
	if release != "" {
		if b, err := os.ReadFile(p("/boot/config-" + release)); err == nil {
			return b, true
		}
	}
	return nil, false
}

// configValue returns a kernel config option's value ("y", "m", ...) or "" when unset.
func configValue(cfg []byte, name string) string {
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func hasLinePrefix(b []byte, prefix string) bool {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(prefix)) {
			return true
		}
	}
	return false
}
