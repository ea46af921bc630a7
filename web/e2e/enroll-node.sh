#!/usr/bin/env bash
# Enrolls node 1 of scripts/e2e/nodes.sh (a real dockerd in a network namespace, started by
# web/e2e/run.sh) with the agent, the way setup-worker does, and starts the agent there.
#
#   web/e2e/enroll-node.sh AGENT_URL TOKEN
#
# Environment: E2E_AGENT_BIN, the static agent binary run.sh built.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
NODES="$REPO/scripts/e2e/nodes.sh"
agent_url="$1" token="$2"
dir="$("$NODES" dir 1)/agent"
mkdir -p "$dir"
"$NODES" exec 1 "$E2E_AGENT_BIN" enroll --agent-url "$agent_url" --token "$token" \
  --advertise-addr "$("$NODES" addr 1)" --data-dir "$dir" --docker-host "$("$NODES" host 1)" >&2
"$NODES" spawn 1 agent "$E2E_AGENT_BIN" run --data-dir "$dir" --docker-host "$("$NODES" host 1)" \
  --report-interval 2s >&2
