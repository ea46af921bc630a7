#!/usr/bin/env bash
# Starts SkyPanel locally for `make run`: the control plane on the dev Postgres (started by
# `make deps`), a local mail catcher so invitation and reset mails can be read, and a first
# platform admin whose login is printed. It then makes this machine the first node (manager
# and edge) of a cluster "local": it starts a Docker Engine if none answers (installing
# docker.io with apt-get if there is none), and on the first run enrolls the machine with the
# dashboard's setup command; later runs restart the enrolled agent from .data/agent.
# Ctrl-C stops the control plane, the agent and a dockerd this script started;
# `make stop` stops Postgres. SKYPANEL_RUN_NODE=0 runs the control plane without the node.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
DATA="$REPO/.data"
mkdir -p "$DATA"

export SKYPANEL_DATABASE_URL="${SKYPANEL_DATABASE_URL:-$(scripts/dev-postgres.sh url skypanel)}"
export SKYPANEL_LISTEN="${SKYPANEL_LISTEN:-127.0.0.1:8080}"
export SKYPANEL_PUBLIC_URL="${SKYPANEL_PUBLIC_URL:-http://$SKYPANEL_LISTEN}"
export SKYPANEL_PAYMENT_PROVIDER="${SKYPANEL_PAYMENT_PROVIDER:-test}"  # top-ups through a local checkout page: no money moves
ADMIN_EMAIL="${SKYPANEL_ADMIN_EMAIL:-admin@skypanel.localhost}"

MAILPIT_PID="" CP_PID="" AGENT_PID="" DOCKERD_PID=""
AGENT_DIR="$DATA/agent"     # the local node's identity (state.json, node.crt), log, pidfile
AGENT_BIN="$DATA/agent-bin" # setup-worker's --prefix: the downloaded agent and installer
CLUSTER_NAME=local

warn() { printf '\n  WARNING: %s\n\n' "$*" >&2; }

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 20) if still there.
stop_pid() {
  local pid=$1 i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < ${2:-20} * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# cleanup stops what this script started, the agent first (it talks to both others).
# The agent runs in its own session (the installer detaches it), so Ctrl-C does not reach it.
cleanup() {
  trap - EXIT INT TERM
  if [[ -z "$AGENT_PID" && -s "$AGENT_DIR/agent.pid" ]]; then
    AGENT_PID=$(cat "$AGENT_DIR/agent.pid")
  fi
  if [[ -n "$AGENT_PID" ]] && grep -qs '^Name:.*skypanel-agent' "/proc/$AGENT_PID/status"; then
    stop_pid "$AGENT_PID"
    rm -f "$AGENT_DIR/agent.pid"
  fi
  stop_pid "$CP_PID" 30
  stop_pid "$MAILPIT_PID" 5
  if [[ -n "$DOCKERD_PID" ]]; then
    echo "stopping the dockerd this script started (pid $DOCKERD_PID); the swarm state stays in /var/lib/docker" >&2
    stop_pid "$DOCKERD_PID" 30
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Mail goes to a local mailpit unless an SMTP server is configured: its web UI shows every
# message the platform sends (invitations, password resets).
MAIL_UI=""
if [[ -z "${SKYPANEL_SMTP_ADDR:-}" ]]; then
  export SKYPANEL_SMTP_ADDR=127.0.0.1:1025 SKYPANEL_SMTP_TLS=none
  MAIL_UI=http://127.0.0.1:8025
  if ! (exec 3<>/dev/tcp/127.0.0.1/1025) 2>/dev/null; then
    "$DATA/bin/mailpit" --smtp 127.0.0.1:1025 --listen 127.0.0.1:8025 \
      --database "$DATA/mailpit.db" --disable-version-check >"$DATA/mailpit.log" 2>&1 &
    MAILPIT_PID=$!
  fi
fi

# The master key seals secrets at rest (the platform CA's key, swarm join tokens). Lose it and
# they are gone: it lives in .data/ with the rest of the local state.
export SKYPANEL_MASTER_KEY_FILE="${SKYPANEL_MASTER_KEY_FILE:-$DATA/master.key}"
if [[ ! -s "$SKYPANEL_MASTER_KEY_FILE" ]]; then
  bin/skypanel-controlplane master-key generate --out "$SKYPANEL_MASTER_KEY_FILE" >/dev/null
fi

# The first admin's password is generated once and kept (mode 0600) so every run can print
# the same login.
PASSFILE="$DATA/admin-password"
if [[ ! -s "$PASSFILE" ]]; then
  (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$PASSFILE")
fi
bin/skypanel-controlplane admin create --email "$ADMIN_EMAIL" --password "$(cat "$PASSFILE")" --if-missing >/dev/null

cat <<BANNER

  SkyPanel is starting at  $SKYPANEL_PUBLIC_URL
  Platform admin:          $ADMIN_EMAIL
  Password:                $(cat "$PASSFILE")   (from .data/admin-password, unless you changed it)
${MAIL_UI:+  Mail sent by SkyPanel:   $MAIL_UI
}  Stop with Ctrl-C; \`make stop\` stops Postgres.

BANNER

# The control plane runs in the background so that this machine can be enrolled once it
# answers; `wait` at the end keeps it in the foreground for Ctrl-C.
bin/skypanel-controlplane serve &
CP_PID=$!
for ((i = 0; ; i++)); do
  if curl -fsS -o /dev/null --max-time 2 "$SKYPANEL_PUBLIC_URL/readyz" 2>/dev/null; then break; fi
  if ! kill -0 "$CP_PID" 2>/dev/null; then
    wait "$CP_PID" && rc=0 || rc=$?
    echo "run: the control plane exited ($rc) before it was ready" >&2
    exit "$rc"
  fi
  if ((i >= 600)); then
    echo "run: the control plane is not ready after 60 s" >&2
    exit 1
  fi
  sleep 0.1
done

# api SERVICE/METHOD JSON: a Connect unary call as the admin ($TOKEN); prints the JSON answer.
# The body and the token go through stdin and a pipe, not the process list.
api() {
  curl -fsS --max-time 30 -H 'Content-Type: application/json' \
    -H @<([[ -z "${TOKEN:-}" ]] || printf 'Authorization: Bearer %s\n' "$TOKEN") \
    --data-binary @- "$SKYPANEL_PUBLIC_URL/skypanel.$1" <<<"$2"
}

# login sets TOKEN to an access token of the first admin (password from .data/admin-password).
login() {
  TOKEN=""
  TOKEN=$(api auth.v1.AuthService/LogIn "$(jq -nc --arg e "$ADMIN_EMAIL" --rawfile p "$PASSFILE" \
    '{email: $e, password: ($p | rtrimstr("\n"))}')" | jq -r '.tokens.accessToken // empty') || true
  [[ -n "$TOKEN" ]]
}

# ensure_docker makes a Docker Engine answer at the default socket: installs docker.io when
# dockerd is missing and starts dockerd in the background (no systemd on these machines).
ensure_docker() {
  # The Engine's own ping on the socket the agent uses: no docker CLI needed.
  docker_ok() { curl -fsS -o /dev/null --max-time 5 --unix-socket /var/run/docker.sock http://docker/_ping 2>/dev/null; }
  if docker_ok; then return 0; fi
  if ! command -v dockerd >/dev/null; then
    echo "run: no Docker Engine here: installing docker.io with apt-get (a few minutes)" >&2
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io; } >"$DATA/docker-install.log" 2>&1; then
      warn "apt-get install docker.io failed (see .data/docker-install.log)"
      return 1
    fi
  fi
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl start docker.service >&2 || true
  else
    echo "run: starting dockerd in the background (log .data/dockerd.log)" >&2
    dockerd >>"$DATA/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
  fi
  for ((i = 0; i < 60; i++)); do
    if docker_ok; then return 0; fi
    if [[ -n "$DOCKERD_PID" ]] && ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
      DOCKERD_PID=""
      warn "dockerd exited right after starting; see .data/dockerd.log"
      return 1
    fi
    sleep 1
  done
  warn "the Docker Engine does not answer after 60 s; see .data/dockerd.log"
  return 1
}

# enroll_local_node makes this machine the first node (manager, edge) of the cluster "local"
# the way an admin would: the setup command from the dashboard's enrollment dialog.
enroll_local_node() {
  local cluster_id setup
  if ! login; then
    warn "cannot log in as $ADMIN_EMAIL with .data/admin-password (changed the password?): this machine is not enrolled"
    return 1
  fi
  cluster_id=$(api cluster.v1.ClusterService/ListClusters '{}' |
    jq -r --arg n "$CLUSTER_NAME" '[.clusters[]? | select(.name == $n)][0].id // empty')
  if [[ -z "$cluster_id" ]]; then
    cluster_id=$(api cluster.v1.ClusterService/CreateCluster "{\"name\": \"$CLUSTER_NAME\"}" | jq -r '.cluster.id // empty') || true
  fi
  [[ -n "$cluster_id" ]] || { warn "cannot find or create the cluster \"$CLUSTER_NAME\": this machine is not enrolled"; return 1; }
  # Nodes in it while this machine has no identity: .data/agent was deleted. Enrolling as a
  # manager would try to join their (probably gone) swarm; start over instead.
  if [[ "$(api cluster.v1.ClusterService/ListNodes "{\"clusterId\": \"$cluster_id\"}" | jq '.nodes // [] | length')" != 0 ]]; then
    warn "cluster \"$CLUSTER_NAME\" has nodes but .data/agent holds no identity: not enrolling this machine again.
  To start over: \`docker swarm leave --force; make clean\` (deletes .data, the dev database with it)."
    return 1
  fi
  setup=$(api cluster.v1.ClusterService/CreateEnrollmentToken "$(jq -nc --arg c "$cluster_id" \
    '{clusterId: $c, role: "NODE_ROLE_MANAGER", labels: {edge: "true"}, description: "this machine (make run)"}')" |
    jq -r '.setupCommand // empty') || true
  [[ "$setup" == curl* ]] || { warn "no setup command from CreateEnrollmentToken"; return 1; }
  echo "run: enrolling this machine: ${setup%%--token*}--token ... --data-dir .data/agent --prefix .data/agent-bin" >&2
  # The installer picks the address of the interface with the default route as the advertise
  # address: the swarm needs one other machines can reach, not 127.0.0.1.
  if ! sh -c "$setup --data-dir '$AGENT_DIR' --prefix '$AGENT_BIN' --skip-docker-install" >"$DATA/setup-worker.log" 2>&1; then
    sed 's/^/    /' "$DATA/setup-worker.log" >&2
    warn "the setup command failed (log .data/setup-worker.log): this machine is not enrolled"
    return 1
  fi
  AGENT_PID=$(cat "$AGENT_DIR/agent.pid" 2>/dev/null || true)
}

# start_agent restarts the enrolled agent (the control plane was restarted too, and
# `make run` rebuilt bin/skypanel-agent): in its own session like the installer's, so that
# Ctrl-C reaches the control plane first and cleanup stops the agent after it.
start_agent() {
  local old
  old=$(cat "$AGENT_DIR/agent.pid" 2>/dev/null || true)
  if [[ -n "$old" ]] && grep -qs '^Name:.*skypanel-agent' "/proc/$old/status"; then
    echo "run: stopping the agent left running by an earlier run (pid $old)" >&2
    stop_pid "$old"
  fi
  mkdir -p "$AGENT_BIN"
  cp bin/skypanel-agent "$AGENT_BIN/.skypanel-agent.new" && mv -f "$AGENT_BIN/.skypanel-agent.new" "$AGENT_BIN/skypanel-agent"
  setsid "$AGENT_BIN/skypanel-agent" run --data-dir "$AGENT_DIR" >>"$AGENT_DIR/agent.log" 2>&1 </dev/null &
  AGENT_PID=$!
  echo "$AGENT_PID" >"$AGENT_DIR/agent.pid"
  sleep 1
  if ! kill -0 "$AGENT_PID" 2>/dev/null; then
    tail -n 5 "$AGENT_DIR/agent.log" | sed 's/^/    /' >&2
    warn "the agent exited right after starting (log .data/agent/agent.log)"
    AGENT_PID=""
    return 1
  fi
}

# node_line waits (up to 90 s) for the node to be ready and describes it.
node_line() {
  local node_id node state role labels i
  node_id=$(jq -r '.node_id' "$AGENT_DIR/state.json")
  login || true
  for ((i = 0; i < 90; i++)); do
    node=$(api cluster.v1.ClusterService/GetNode "{\"nodeId\": \"$node_id\"}" 2>/dev/null || true)
    state=$(jq -r '.node.state // empty' <<<"$node" 2>/dev/null || true)
    [[ "$state" == NODE_STATE_READY ]] && break
    sleep 1
  done
  role=$(jq -r '.node.role // "" | sub("NODE_ROLE_"; "") | ascii_downcase' <<<"$node" 2>/dev/null || true)
  labels=$(jq -r '[.node.labels // {} | to_entries[] | if .value == "true" then .key else "\(.key)=\(.value)" end] | join(", ")' <<<"$node" 2>/dev/null || true)
  echo
  echo "  This machine is node $(hostname) of cluster $CLUSTER_NAME (${role:-?}${labels:+, $labels})"
  if [[ "$state" != NODE_STATE_READY ]]; then
    echo "  (not ready yet: ${state:-unknown}; see .data/agent/agent.log)"
  fi
  echo "  Its agent logs to .data/agent/agent.log; \`docker node ls\` shows the swarm."
  echo
}

# ensure_plan gives a fresh platform a plan, so that apps can be created at once.
ensure_plan() {
  login || return 1
  if [[ "$(api plan.v1.PlanService/ListPlans '{}' | jq '.plans // [] | length')" == 0 ]]; then
    api plan.v1.PlanService/CreatePlan '{"plan": {"name": "starter", "cpuMillis": 250, "memoryMib": 256,
      "pricePerHour": 1, "currency": "USD", "maxReplicas": 3, "maxApps": 10,
      "description": "made by make run"}}' >/dev/null && echo "  Created the plan \"starter\" (Admin → Plans)."
  fi
}
ensure_plan || warn "could not check the plans"

if [[ "${SKYPANEL_RUN_NODE:-1}" == 0 ]]; then
  :
elif ! ensure_docker; then
  warn "no Docker Engine: this machine is not a node of the cluster \"$CLUSTER_NAME\"; the control plane runs without it"
elif [[ -s "$AGENT_DIR/state.json" ]]; then
  start_agent && node_line || true
else
  enroll_local_node && node_line || true
fi

wait "$CP_PID"
