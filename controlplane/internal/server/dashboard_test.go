package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestDashboardFilesAreGzippedOnlyForClientsThatAcceptIt(t *testing.T) {
	js := strings.Repeat("console.log('skypanel');\n", 200)
	c := &gzipCache{files: fstest.MapFS{
		"assets/app-1234.js": {Data: []byte(js)},
		"logo.png":           {Data: bytes.Repeat([]byte{0x89}, 4096)},
	}}
	get := func(name, acceptEncoding string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/"+name, nil)
		if acceptEncoding != "" {
			r.Header.Set("Accept-Encoding", acceptEncoding)
		}
		w := httptest.NewRecorder()
		c.serve(w, r, name)
		return w
	}

	w := get("assets/app-1234.js", "gzip, br")
	require.Equal(t, "gzip", w.Header().Get("Content-Encoding"))
	require.Contains(t, w.Header().Get("Content-Type"), "javascript")
	require.Less(t, w.Body.Len(), len(js)/4, "compressed")
	zr, err := gzip.NewReader(w.Body)
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, js, string(plain))

	w = get("assets/app-1234.js", "")
	require.Empty(t, w.Header().Get("Content-Encoding"))
	require.Equal(t, js, w.Body.String())
	require.Equal(t, "Accept-Encoding", w.Header().Get("Vary"))

	w = get("logo.png", "gzip")
	require.Empty(t, w.Header().Get("Content-Encoding"), "images are not recompressed")
}
