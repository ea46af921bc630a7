package docker

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

func TestOverlayEncryptionHeuristic(t *testing.T) {
	const rel = "6.1.0-test"
	gz := func(s string) string {
		var b bytes.Buffer
		z := gzip.NewWriter(&b)
		z.Write([]byte(s))
		z.Close()
		return b.String()
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"nothing known means no", map[string]string{}, false},
		{"a loaded esp4 module means yes", map[string]string{"sys/module/esp4/refcnt": "0"}, true},
		{"esp4 in /proc/modules means yes", map[string]string{"proc/modules": "xfrm_user 1 0 - Live\nesp4 2 0 - Live\n"}, true},
		{"built-in ESP with XFRM user means yes", map[string]string{
			"proc/config.gz": gz("CONFIG_XFRM_USER=y\nCONFIG_INET_ESP=y\n")}, true},
		{"ESP not set means no (this machine)", map[string]string{
			"proc/config.gz": gz("CONFIG_XFRM_USER=y\n# CONFIG_INET_ESP is not set\n")}, false},
		{"ESP as a module needs the module file", map[string]string{
			"proc/sys/kernel/osrelease": rel, "boot/config-" + rel: "CONFIG_XFRM_USER=m\nCONFIG_INET_ESP=m\n"}, false},
		{"ESP as a present module means yes", map[string]string{
			"proc/sys/kernel/osrelease": rel, "boot/config-" + rel: "CONFIG_XFRM_USER=m\nCONFIG_INET_ESP=m\n",
			"lib/modules/" + rel + "/kernel/net/ipv4/esp4.ko.xz": "x"}, true},
		{"ESP without XFRM user means no", map[string]string{"proc/config.gz": gz("CONFIG_INET_ESP=y\n")}, false},
		{"without a config, modules.builtin decides", map[string]string{
			"proc/sys/kernel/osrelease": rel, "lib/modules/" + rel + "/modules.builtin": "kernel/net/ipv4/esp4.ko\n"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := OverlayEncryption(root); got != tc.want {
				t.Fatalf("OverlayEncryption = %v, want %v", got, tc.want)
			}
		})
	}
	t.Logf("this machine: overlay encryption %v", OverlayEncryption("/"))
}
