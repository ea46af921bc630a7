// Package scripts embeds the shell scripts the control plane serves: setup-worker.sh, the
// one-liner an admin runs on a new node (see controlplane/internal/server/downloads.go).
package scripts

import _ "embed"

// SetupWorker is setup-worker.sh as written, with PublicURLPlaceholder where the control
// plane puts its public URL when it serves the script.
//
//go:embed setup-worker.sh
var SetupWorker string

// PublicURLPlaceholder stands for the control plane's public URL in SetupWorker. It sits
// inside single quotes, so the URL put there must have its own single quotes escaped.
const PublicURLPlaceholder = "@@SKYPANEL_PUBLIC_URL@@"
