#!/usr/bin/env bash
# Browser tests of the dashboard: builds the web app and the control plane (which embeds it),
# starts them on a fresh database with a real SMTP server (mailpit), and drives Debian's
# Chromium through the scenario in web/e2e/*.test.mjs with Node's test runner.
#
#   web/e2e/run.sh            build, start, test, stop
#   web/e2e/run.sh --serve    build and start, print the URLs, and keep running (Ctrl-C stops)
#
# Environment:
#   CHROMIUM=/usr/bin/chromium  the browser; missing it skips the tests, except under CI=true
#   UPDATE_SCREENSHOTS=1        rewrite docs/screenshots/*.png
#   E2E_SKIP_BUILD=1            reuse web/dist and .data/e2e/skypanel-controlplane as they are
#   E2E_SWARM=0                 no real node: the app deployment test is skipped (it runs by
#                               default as root with dockerd; under CI=true it always runs)
#   E2E_TESTS="billing apps"    run only these test files (web/e2e/<name>.test.mjs); default all
# Failed tests leave screenshots and the control plane's log in web/e2e/artifacts/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
WEB="$REPO/web"
DATA="$REPO/.data/e2e"
ARTIFACTS="$WEB/e2e/artifacts"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
SERVE=0
[[ "${1:-}" == "--serve" ]] && SERVE=1

log() { echo "e2e: $*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $SERVE == 0 && ! -x "$CHROMIUM" ]]; then
  if [[ "${CI:-}" == "true" ]]; then
    die "Chromium not found at $CHROMIUM (apt-get install chromium); CI never skips the browser tests"
  fi
  log "skipping the browser tests: Chromium not found at $CHROMIUM (apt-get install chromium)"
  exit 0
fi

cd "$REPO"
mkdir -p "$DATA"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"

if [[ ! -f "$WEB/node_modules/go.mod" ]]; then
  (cd "$WEB" && npm ci --no-audit --no-fund)
  echo 'module ignore' >"$WEB/node_modules/go.mod"
fi
if [[ "${E2E_SKIP_BUILD:-}" != "1" ]]; then
  log "building the web app"
  (cd "$WEB" && npm run --silent build) >&2
  log "building the control plane"
  CGO_ENABLED=0 go build -o "$DATA/skypanel-controlplane" ./controlplane/cmd/skypanel-controlplane
  log "building the simulated agent"
  CGO_ENABLED=0 go build -o "$DATA/simagent" ./web/e2e/simagent
  log "building the agent and the test app"
  CGO_ENABLED=0 go build -o "$DATA/skypanel-agent" ./agent/cmd/skypanel-agent
  CGO_ENABLED=0 go build -o "$DATA/app/whoami" ./controlplane/internal/e2e/testdata/whoami
fi

# A real Docker node (a dockerd in a network namespace, scripts/e2e/nodes.sh) for the test that
# deploys an app for real; the test enrolls it with web/e2e/enroll-node.sh.
SWARM=0
if [[ "${E2E_SWARM:-1}" != 0 && $SERVE == 0 ]]; then
  if [[ $EUID -eq 0 ]] && command -v dockerd >/dev/null; then
    SWARM=1
  elif [[ "${CI:-}" == "true" ]]; then
    die "the app deployment test needs root and dockerd (apt-get install docker.io); CI never skips it"
  else
    log "no real node (needs root and dockerd): the app deployment test is skipped"
  fi
fi
[[ -x .data/bin/mailpit ]] || scripts/dev-tools.sh >&2

# A fresh database on the dev Postgres (started if it is not running).
scripts/dev-postgres.sh start >/dev/null
PSQL="$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)"
PGOPTIONS='--client-min-messages=warning' "$PSQL" "$(scripts/dev-postgres.sh url postgres)" -q -v ON_ERROR_STOP=1 \
  -c 'DROP DATABASE IF EXISTS skypanel_e2e WITH (FORCE)' -c 'CREATE DATABASE skypanel_e2e' >&2
export SKYPANEL_DATABASE_URL="$(scripts/dev-postgres.sh url skypanel_e2e)"

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
CP_PORT=$(free_port)
SMTP_PORT=$(free_port)
MAIL_PORT=$(free_port)
AGENT_PORT=$(free_port)

PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $SWARM == 1 ]]; then
    [[ $rc -ne 0 ]] && cp "$("$REPO/scripts/e2e/nodes.sh" dir 1)/agent.log" "$ARTIFACTS/agent.log" 2>/dev/null
    "$REPO/scripts/e2e/nodes.sh" down >/dev/null 2>&1 || true
  fi
  if [[ $rc -ne 0 && -f "$DATA/controlplane.log" ]]; then
    cp "$DATA/controlplane.log" "$ARTIFACTS/controlplane.log"
    log "failed; screenshots and the control plane's log are in web/e2e/artifacts/"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -f "$DATA/mailpit.db"*
.data/bin/mailpit --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$MAIL_PORT" \
  --database "$DATA/mailpit.db" --disable-version-check >"$DATA/mailpit.log" 2>&1 &
PIDS+=($!)

export SKYPANEL_LISTEN="127.0.0.1:$CP_PORT"
export SKYPANEL_PUBLIC_URL="http://127.0.0.1:$CP_PORT"
export SKYPANEL_SMTP_ADDR="127.0.0.1:$SMTP_PORT" SKYPANEL_SMTP_TLS=none
# The agent listener, for the simulated nodes of clusters.test.mjs (web/e2e/simagent) and,
# on the nodes' bridge, for the real node.
export SKYPANEL_AGENT_LISTEN="127.0.0.1:$AGENT_PORT"
AGENT_URL="https://127.0.0.1:$AGENT_PORT"
if [[ $SWARM == 1 ]]; then
  log "starting a real Docker node"
  scripts/e2e/nodes.sh up 1 >/dev/null
  tar -C "$DATA/app" -cf - whoami |
    scripts/e2e/nodes.sh docker 1 import --change 'ENTRYPOINT ["/whoami"]' - whoami:e2e >/dev/null
  export SKYPANEL_AGENT_LISTEN="10.77.0.1:$AGENT_PORT"
  AGENT_URL="https://10.77.0.1:$AGENT_PORT"
  export SKYPANEL_E2E_SWARM=1 SKYPANEL_E2E_APP_IMAGE=whoami:e2e SKYPANEL_E2E_APP_COMMAND="/whoami app"
  export E2E_ENROLL="$WEB/e2e/enroll-node.sh" E2E_AGENT_BIN="$DATA/skypanel-agent"
fi
SIMAGENT="$DATA/simagent"
# Secrets at rest are sealed with a master key; a fresh database gets a fresh key.
rm -f "$DATA/master.key"
if "$DATA/skypanel-controlplane" master-key generate --out "$DATA/master.key" >/dev/null 2>&1; then
  export SKYPANEL_MASTER_KEY_FILE="$DATA/master.key"
fi
ADMIN_EMAIL=admin@example.com
ADMIN_PASSWORD="e2e-admin-$(head -c 9 /dev/urandom | base64 | tr '+/' 'xy')"
"$DATA/skypanel-controlplane" admin create --email "$ADMIN_EMAIL" --password "$ADMIN_PASSWORD" >/dev/null
# Top-ups go through the test payment provider: a checkout page the control plane serves
# itself, with Pay and Cancel buttons (billing.test.mjs pays through it).
"$DATA/skypanel-controlplane" serve --payment-provider test >"$DATA/controlplane.log" 2>&1 &
PIDS+=($!)

wait_for() {
  local url="$1" deadline=$((SECONDS + 60))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    (( SECONDS < deadline )) || { tail -n 30 "$DATA/controlplane.log" >&2 || true; die "$url did not answer within 60s"; }
    sleep 0.2
  done
}
wait_for "$SKYPANEL_PUBLIC_URL/readyz"
wait_for "http://127.0.0.1:$MAIL_PORT/api/v1/messages"

# E2E_PSQL lets tests seed what no API makes (billing.test.mjs: an app's past run).
export BASE_URL="$SKYPANEL_PUBLIC_URL" MAILPIT_URL="http://127.0.0.1:$MAIL_PORT" ADMIN_EMAIL ADMIN_PASSWORD CHROMIUM AGENT_URL SIMAGENT
export E2E_PSQL="$PSQL"

if [[ $SERVE == 1 ]]; then
  log "dashboard: $BASE_URL   mail: $MAILPIT_URL   admin: $ADMIN_EMAIL / $ADMIN_PASSWORD"
  log "agent URL: $AGENT_URL   simulated node: $SIMAGENT --agent-url $AGENT_URL --token <spen.…>"
  log "Ctrl-C stops it"
  wait "${PIDS[@]}"
  exit 0
fi

log "running the browser tests against $BASE_URL"
cd "$WEB"
FILES=(e2e/*.test.mjs)
if [[ -n "${E2E_TESTS:-}" ]]; then
  FILES=()
  for name in $E2E_TESTS; do
    [[ -f "e2e/$name.test.mjs" ]] || die "E2E_TESTS: no web/e2e/$name.test.mjs"
    FILES+=("e2e/$name.test.mjs")
  done
fi
node --test --test-concurrency=1 --test-timeout=300000 "${FILES[@]}"
