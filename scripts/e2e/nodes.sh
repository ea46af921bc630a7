#!/usr/bin/env bash
# Real Docker nodes on one machine, for the multi-node e2e tests: each node is a network
# namespace on a bridge in the root namespace, running its own dockerd.
#
#   scripts/e2e/nodes.sh up N               (re)create nodes 1..N; prints the node table
#   scripts/e2e/nodes.sh down               stop and remove every node, the bridge and the rules
#   scripts/e2e/nodes.sh status             print the node table
#   scripts/e2e/nodes.sh exec I CMD...      run CMD in node I's network namespace
#   scripts/e2e/nodes.sh docker I ARGS...   the docker CLI against node I's dockerd
#   scripts/e2e/nodes.sh spawn I NAME CMD...  start CMD in node I's namespace in the background;
#                                           writes NAME.pid and NAME.log into node I's dir
#   scripts/e2e/nodes.sh kill I NAME [SIG]  signal a spawned process (default TERM); for
#                                           TERM/INT/QUIT/KILL it also waits until it is gone
#   scripts/e2e/nodes.sh cut I | heal I     take node I's link down / up again
#   scripts/e2e/nodes.sh addr I | host I | dir I   print node I's address, DOCKER_HOST or dir
#
# Layout: bridge skpbr0 10.77.0.1/24 in the root namespace (the control plane can listen
# there); node I is netns skpnI with eth0 10.77.0.(I+10)/24 (root side of its veth: skpvI),
# default route via 10.77.0.1, hostname skpnI (its own UTS namespace), and a dockerd with data-root, exec-root, pidfile, socket and
# log under /tmp/skpn/I, docker0 172.31.I.1/24 and containers under cgroup /skpnI.
# exec and spawn enter the node's network and UTS namespaces and set DOCKER_HOST to its dockerd.
#
# Needs root, dockerd (docker.io), docker, ip (iproute2), iptables, nsenter, flock, curl.
# A missing prerequisite exits with status 3 (the Go helper skips or fails on it).
# up and down are idempotent and clean up stale namespaces, links, mounts and processes left
# by an earlier run that died. All diagnostics go to stderr.
set -euo pipefail

BRIDGE=skpbr0
NET=10.77.0
ROOT=/tmp/skpn
LOCK=/tmp/skpn.lock
MAX_NODES=200
# How long one dockerd may take to answer on its socket.
READY_TIMEOUT=${SKYPANEL_NODES_READY_TIMEOUT:-90}

log() { echo "nodes: $*" >&2; }
die() { log "error: $*"; exit 1; }

netns() { echo "skpn$1"; }
veth() { echo "skpv$1"; }
node_dir() { echo "$ROOT/$1"; }
addr() { echo "$NET.$(($1 + 10))"; }
sock() { echo "$ROOT/$1/d.sock"; }
docker_host() { echo "unix://$(sock "$1")"; }

check_index() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= MAX_NODES)) || die "bad node index '${1:-}' (1..$MAX_NODES)"
}

prereqs() {
  local missing=() c
  [[ $EUID -eq 0 ]] || { log "error: must run as root"; exit 3; }
  for c in dockerd docker ip iptables nsenter unshare flock curl setsid; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  if ((${#missing[@]})); then
    log "error: missing commands: ${missing[*]} (apt-get install -y docker.io iproute2 iptables util-linux curl)"
    exit 3
  fi
}

lock() {
  exec 9>"$LOCK"
  flock -w 300 9 || die "another nodes.sh holds $LOCK"
}

# alive PID: the process exists and is not a zombie. PID 1 here does not reap orphans, so a
# dead daemon stays a zombie that `kill -0` still sees.
alive() {
  local state
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# wait_gone PID... polls until none of the pids is alive or the deadline passes.
wait_gone() {
  local deadline=$((SECONDS + ${WAIT_GONE_TIMEOUT:-15})) p left
  while :; do
    left=()
    for p in "$@"; do alive "$p" && left+=("$p"); done
    ((${#left[@]})) || return 0
    ((SECONDS < deadline)) || { log "still alive after kill: ${left[*]}"; return 1; }
    sleep 0.1
  done
}

# node_pids I prints every live process that belongs to node I: its dockerd (pidfile), the
# daemons and shims whose command line names the node dir, anything in the node's network
# namespace (docker-proxy, spawned agents) and every container process (cgroup /skpnI).
node_pids() {
  local i=$1 dir ino cg p
  dir=$(node_dir "$i")
  {
    # dockerd writes its pidfile without a newline.
    [[ -f "$dir/dockerd.pid" ]] && echo "$(head -n1 "$dir/dockerd.pid")"
    ino=$(stat -Lc %i "/var/run/netns/$(netns "$i")" 2>/dev/null || true)
    if [[ -n "$ino" ]]; then
      find /proc/[0-9]*/ns/net -maxdepth 0 -lname "net:\[$ino\]" 2>/dev/null | cut -d/ -f3
    fi
    # "[/]" so that grep's own command line does not match.
    grep -las -E "$dir[/]" /proc/[0-9]*/cmdline | cut -d/ -f3
    for cg in /sys/fs/cgroup/*/"$(netns "$i")"; do
      [[ -d "$cg" ]] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
    done
  } | sort -un | while read -r p; do
    [[ "$p" =~ ^[0-9]+$ && "$p" != "$$" && "$p" != "$BASHPID" ]] && alive "$p" && echo "$p"
  done || true
}

kill_node_processes() {
  local i=$1 pids
  # Everything of a node is thrown away, so there is nothing to stop gracefully.
  mapfile -t pids < <(node_pids "$i")
  ((${#pids[@]})) || return 0
  log "node $i: killing ${#pids[@]} processes"
  kill -9 "${pids[@]}" 2>/dev/null || true
  wait_gone "${pids[@]}" || true
  # Orphaned container processes may appear once their shim is gone: one more round.
  mapfile -t pids < <(node_pids "$i")
  if ((${#pids[@]})); then
    kill -9 "${pids[@]}" 2>/dev/null || true
    wait_gone "${pids[@]}" || true
  fi
}

# unmount_under DIR unmounts everything mounted below DIR (overlay layers, shm, the netns
# files dockerd keeps in its exec-root), deepest first.
unmount_under() {
  local dir=$1 m
  awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
  done
}

clean_node() {
  local i=$1 dir cg
  dir=$(node_dir "$i")
  kill_node_processes "$i"
  [[ -d "$dir" ]] && unmount_under "$dir"
  ip netns del "$(netns "$i")" 2>/dev/null || true
  ip link del "$(veth "$i")" 2>/dev/null || true
  if [[ -d "$dir" ]]; then
    rm -rf --one-file-system "$dir" 2>/dev/null || { unmount_under "$dir"; rm -rf --one-file-system "$dir"; }
  fi
  for cg in /sys/fs/cgroup/*/"$(netns "$i")"; do
    [[ -d "$cg" ]] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# known_nodes prints the index of every node something is left of.
known_nodes() {
  {
    local d n l
    for d in "$ROOT"/[0-9]*; do [[ -d "$d" ]] && echo "${d##*/}"; done
    for n in /var/run/netns/skpn[0-9]*; do [[ -e "$n" ]] && echo "${n##*/skpn}"; done
    ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: skpv\([0-9]*\)[@:].*/\1/p'
    for l in /sys/fs/cgroup/*/skpn[0-9]*; do [[ -d "$l" ]] && echo "${l##*/skpn}"; done
  } | grep -E '^[0-9]+$' | sort -un || true
}

forward_rule() { iptables "$1" FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; }
# Nothing from the nodes is routed off the bridge, even when a root dockerd turned on
# ip_forward (each node also rejects such traffic itself).
leave_rule() { iptables "$1" FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null; }

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # A dockerd in the root namespace sets the FORWARD policy to DROP, and bridged frames go
  # through iptables when net.bridge.bridge-nf-call-iptables=1: let our bridge through.
  leave_rule -C || leave_rule -I || die "iptables: cannot add the FORWARD rule for $BRIDGE"
  forward_rule -C || forward_rule -I || die "iptables: cannot allow forwarding on $BRIDGE"
}

create_node() {
  local i=$1 ns dir v a
  ns=$(netns "$i") dir=$(node_dir "$i") v=$(veth "$i") a=$(addr "$i")
  mkdir -p "$dir"
  ip netns add "$ns"
  ip link add "$v" type veth peer name "${v}p" netns "$ns"
  ip link set "$v" master "$BRIDGE" up
  ip -n "$ns" link set "${v}p" name eth0
  ip -n "$ns" addr add "$a/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" route add default via "$NET.1"
  # Nodes talk only to the 10.77.0.0/24 subnet: off-subnet traffic of the node (dockerd's
  # registry lookups, its containers) is rejected at once instead of leaving the machine,
  # which also turns Swarm's 20 s DNS timeout per image pull attempt into an instant error.
  # dockerd keeps an existing DOCKER-USER chain and only appends its RETURN rule.
  local reject=(-o eth0 ! -d "$NET.0/24" -j REJECT --reject-with icmp-net-unreachable)
  nsenter --net="/var/run/netns/$ns" -- iptables -A OUTPUT "${reject[@]}"
  nsenter --net="/var/run/netns/$ns" -- iptables -N DOCKER-USER
  nsenter --net="/var/run/netns/$ns" -- iptables -A DOCKER-USER "${reject[@]}"
  # Its own hostname too (a persistent UTS namespace), so Swarm and agents tell nodes apart.
  touch "$dir/uts"
  unshare --uts="$dir/uts" hostname "$ns"
  # nsenter, not `ip netns exec`: the latter remounts /sys and dockerd then fails with
  # "Devices cgroup isn't mounted". setsid keeps it out of the caller's process group;
  # 9>&- keeps our lock from leaking into the daemon.
  setsid nsenter --net="/var/run/netns/$ns" --uts="$dir/uts" -- dockerd \
    --host "$(docker_host "$i")" \
    --data-root "$dir/data" --exec-root "$dir/x" --pidfile "$dir/dockerd.pid" \
    --bip "172.31.$i.1/24" --cgroup-parent "/$ns" \
    >"$dir/dockerd.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/nsenter.pid"
}

ping_dockerd() { curl -fsS --max-time 2 --unix-socket "$(sock "$1")" http://docker/_ping >/dev/null 2>&1; }

wait_ready() {
  local i deadline=$((SECONDS + READY_TIMEOUT)) pending=("$@") left pid
  while ((${#pending[@]})); do
    left=()
    for i in "${pending[@]}"; do
      ping_dockerd "$i" && continue
      pid=$(cat "$(node_dir "$i")/nsenter.pid" 2>/dev/null || true)
      if [[ -n "$pid" ]] && ! alive "$pid"; then
        tail -n 30 "$(node_dir "$i")/dockerd.log" >&2 || true
        die "node $i: dockerd exited (log: $(node_dir "$i")/dockerd.log)"
      fi
      left+=("$i")
    done
    pending=("${left[@]+"${left[@]}"}")
    ((${#pending[@]})) || break
    if ((SECONDS >= deadline)); then
      for i in "${pending[@]}"; do tail -n 20 "$(node_dir "$i")/dockerd.log" >&2 || true; done
      die "dockerd of node(s) ${pending[*]} did not answer within ${READY_TIMEOUT}s"
    fi
    sleep 0.1
  done
}

cmd_up() {
  local n=${1:-} i start=$SECONDS
  [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1 && n <= MAX_NODES)) || die "usage: $0 up N (1..$MAX_NODES)"
  prereqs
  lock
  # Start from nothing: stale namespaces, links and daemons of an earlier run would clash.
  for i in $(known_nodes); do clean_node "$i"; done
  mkdir -p "$ROOT" /var/run/netns
  ensure_bridge
  for i in $(seq "$n"); do create_node "$i"; done
  wait_ready $(seq "$n")
  log "$n node(s) up in $((SECONDS - start))s"
  cmd_status
}

cmd_down() {
  local i
  prereqs
  lock
  for i in $(known_nodes); do clean_node "$i"; done
  while forward_rule -D; do :; done
  while leave_rule -D; do :; done
  ip link del "$BRIDGE" 2>/dev/null || true
  rmdir "$ROOT" 2>/dev/null || true
  # Anything still running from the node dirs (e.g. a dockerd whose namespace was deleted).
  local strays p
  mapfile -t strays < <(grep -las -E "$ROOT[/]" /proc/[0-9]*/cmdline | cut -d/ -f3 | while read -r p; do
    [[ "$p" != "$$" ]] && alive "$p" && echo "$p"
  done || true)
  if ((${#strays[@]})); then
    log "killing stray processes: ${strays[*]}"
    kill -9 "${strays[@]}" 2>/dev/null || true
    wait_gone "${strays[@]}" || true
  fi
  log "down"
}

cmd_status() {
  local i pid state link swarm
  printf '%-4s %-7s %-12s %-26s %-8s %-6s %s\n' NODE NETNS ADDR DOCKER_HOST DOCKERD LINK SWARM
  for i in $(known_nodes); do
    pid=$(head -n1 "$(node_dir "$i")/dockerd.pid" 2>/dev/null || true)
    if [[ -n "$pid" ]] && alive "$pid" && ping_dockerd "$i"; then
      state=$pid
      swarm=$(curl -fsS --max-time 2 --unix-socket "$(sock "$i")" http://docker/info 2>/dev/null |
        sed -n 's/.*"LocalNodeState":"\([a-z]*\)".*"ControlAvailable":\(true\|false\).*/\1 manager=\2/p')
    else
      state=down swarm=-
    fi
    if ip link show "$(veth "$i")" 2>/dev/null | grep -q 'state UP\|,UP'; then link=up; else link=cut; fi
    ip link show "$(veth "$i")" >/dev/null 2>&1 || link=-
    printf '%-4s %-7s %-12s %-26s %-8s %-6s %s\n' "$i" "$(netns "$i")" "$(addr "$i")" \
      "unix://$ROOT/$i/d.sock" "$state" "$link" "${swarm:--}"
  done
}

need_node() {
  check_index "$1"
  [[ -e "/var/run/netns/$(netns "$1")" ]] || die "node $1 is not up (run: $0 up N)"
}

cmd_exec() {
  local i=${1:-}
  need_node "$i"
  shift
  (($#)) || die "usage: $0 exec I CMD..."
  DOCKER_HOST=$(docker_host "$i") exec nsenter --net="/var/run/netns/$(netns "$i")" --uts="$(node_dir "$i")/uts" -- "$@"
}

check_name() { [[ "${1:-}" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad process name '${1:-}'"; }

cmd_spawn() {
  local i=${1:-} name=${2:-} dir pid
  need_node "$i"
  check_name "$name"
  shift 2
  (($#)) || die "usage: $0 spawn I NAME CMD..."
  dir=$(node_dir "$i")
  if pid=$(cat "$dir/$name.pid" 2>/dev/null) && alive "$pid"; then
    die "node $i: $name is already running (pid $pid)"
  fi
  # Non-interactive bash runs background jobs in its own process group, so setsid does not
  # fork and $! is the command's pid (nsenter execs it).
  DOCKER_HOST=$(docker_host "$i") setsid nsenter --net="/var/run/netns/$(netns "$i")" --uts="$dir/uts" -- "$@" \
    >>"$dir/$name.log" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$dir/$name.pid"
  echo "$pid"
}

cmd_kill() {
  local i=${1:-} name=${2:-} sig=${3:-TERM} dir pid
  check_index "$i"
  check_name "$name"
  dir=$(node_dir "$i")
  pid=$(cat "$dir/$name.pid" 2>/dev/null) || die "node $i: no $name.pid"
  alive "$pid" || { log "node $i: $name (pid $pid) is not running"; return 0; }
  kill -s "$sig" "$pid"
  case "${sig#SIG}" in
  TERM | INT | QUIT | KILL | 15 | 2 | 3 | 9)
    WAIT_GONE_TIMEOUT=${SKYPANEL_NODES_KILL_TIMEOUT:-30} wait_gone "$pid" || die "node $i: $name (pid $pid) did not exit after SIG${sig#SIG}"
    ;;
  esac
}

cmd_link() {
  local i=${1:-} state=$2
  need_node "$i"
  ip link set "$(veth "$i")" "$state"
}

case "${1:-}" in
up) shift; cmd_up "$@" ;;
down) cmd_down ;;
status) cmd_status ;;
exec) shift; cmd_exec "$@" ;;
docker)
  shift; check_index "${1:-}"; i=$1; shift
  exec docker -H "$(docker_host "$i")" "$@"
  ;;
spawn) shift; cmd_spawn "$@" ;;
kill) shift; cmd_kill "$@" ;;
cut) cmd_link "${2:-}" down ;;
heal) cmd_link "${2:-}" up ;;
addr) check_index "${2:-}"; addr "$2" ;;
host) check_index "${2:-}"; docker_host "$2" ;;
dir) check_index "${2:-}"; node_dir "$2" ;;
*) die "usage: $0 up N | down | status | exec I CMD... | docker I ARGS... | spawn I NAME CMD... | kill I NAME [SIG] | cut I | heal I | addr I | host I | dir I" ;;
esac
