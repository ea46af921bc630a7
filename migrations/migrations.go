// Package migrations holds the control plane's numbered SQL migrations. Each version N has
// NNNN_name.up.sql and NNNN_name.down.sql; they are embedded in the binary and applied by
// the store's migrator, at start and by `skypanel-controlplane migrate`.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
