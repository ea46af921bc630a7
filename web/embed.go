// Package web embeds the dashboard's build (web/dist) into the control-plane binary. When the
// dashboard was not built, dist holds only placeholder.html, so Go-only builds and tests work
// without Node.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist returns the dashboard's files, rooted at dist/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is always embedded
	}
	return sub
}
