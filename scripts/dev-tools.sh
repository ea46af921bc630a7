#!/usr/bin/env bash
# Installs the real test peers the Go tests run against, as binaries under .data/bin/.
# Idempotent: a tool already present is not rebuilt (delete .data/bin to force it).
# Quiet on success apart from the final "tools ready".
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BIN="$REPO/.data/bin"
mkdir -p "$BIN"

# go_tool NAME MODULE@VERSION: build a Go command into .data/bin unless present.
# The version is pinned here rather than in go.mod: these are separate programs,
# and their dependencies must not leak into the skypanel module.
go_tool() {
  local name="$1" pkg="$2" out
  [[ -x "$BIN/$name" ]] && return 0
  # Build output only matters when it fails (the first build takes minutes).
  if ! out="$(CGO_ENABLED=0 GOBIN="$BIN" go install "$pkg" 2>&1)"; then
    echo "$out" >&2
    echo "dev-tools: error: building $name failed" >&2
    exit 1
  fi
}

# SMTP server with an HTTP API to read caught mail.
go_tool mailpit github.com/axllent/mailpit@v1.33.1

# ACME test server (Let's Encrypt's Pebble) and its DNS/challenge test server, for custom
# domains' certificates in the apps e2e test.
go_tool pebble github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.1
go_tool pebble-challtestsrv github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@v2.10.1

echo "tools ready"
