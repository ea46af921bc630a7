#!/usr/bin/env bash
# Local PostgreSQL 15 for development, tests and benchmarks.
#
#   scripts/dev-postgres.sh [start]   install if needed, start if not running, create DBs, print URL
#   scripts/dev-postgres.sh stop      fast shutdown if running
#   scripts/dev-postgres.sh clean     stop and delete all data
#   scripts/dev-postgres.sh url [DB]  print the URL of DB (default: skypanel)
#
# Environment:
#   SKYPANEL_PG_PORT   TCP port on 127.0.0.1 (default 55432)
#   SKYPANEL_PG_FAST=1 start without durability (fsync etc. off); for tests only.
#                      Only takes effect when this call actually starts the server.
#
# Only the URL goes to stdout (as the last line); everything else goes to stderr so
# callers can do URL=$(scripts/dev-postgres.sh start | tail -n1).
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
PORT="${SKYPANEL_PG_PORT:-55432}"
DATABASES=(skypanel skypanel_test skypanel_bench)

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PG_DIR="$REPO/.data/postgres"
PGDATA="$PG_DIR/data"
LOG="$PG_DIR/log"
SOCK_DIR="$PG_DIR"
# A unix socket path is limited to 107 bytes; a deep checkout would overflow it.
if (( ${#SOCK_DIR} + ${#PORT} + 12 > 100 )); then
  SOCK_DIR="/tmp/skypanel-pg-$(printf '%s' "$REPO" | md5sum | cut -c1-12)"
fi

log() { echo "dev-postgres: $*" >&2; }
die() { log "error: $*"; exit 1; }

url() { echo "postgres://postgres@127.0.0.1:$PORT/${1:-skypanel}?sslmode=disable"; }

# Postgres refuses to run as root, so as root every server-side command runs as
# `postgres`; a non-root user simply owns the cluster itself.
as_pg() {
  if [[ $EUID -eq 0 ]]; then
    # cd / so the postgres user is not left in an unreadable working directory.
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_ctl_() { as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" "$@"; }

# Not `pg_ctl status`: PID 1 on these machines does not reap orphans, so a
# postmaster killed with -9 stays a zombie that kill -0 (and pg_ctl) sees as
# alive. Its cwd is PGDATA only while it really runs, and a recycled pid fails too.
is_running() {
  local pid
  pid="$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ && "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$PGDATA" ]]
}

install_postgres() {
  [[ -x "$PG_BIN/initdb" ]] && return 0
  [[ $EUID -eq 0 ]] || die "$PG_BIN/initdb missing; run as root to install postgresql"
  log "installing postgresql (apt)"
  # Debian's package would create and try to start its own 'main' cluster; we run
  # our own, so tell postgresql-common not to create one.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/skypanel.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
  # Belt and braces: if a packaged cluster exists anyway, make sure it is not running.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _port status _rest; do
      if [[ "$status" == online* ]]; then
        log "stopping packaged cluster $ver/$name"
        pg_ctlcluster "$ver" "$name" stop >&2 || true
      fi
    done
  fi
  [[ -x "$PG_BIN/initdb" ]] || die "postgresql installed but $PG_BIN/initdb still missing"
}

prepare_dirs() {
  mkdir -p "$PG_DIR" "$SOCK_DIR"
  [[ $EUID -eq 0 ]] || return 0
  chmod 755 "$REPO/.data"
  chown postgres:postgres "$PG_DIR" "$SOCK_DIR"
  chmod 755 "$PG_DIR"  # the socket lives here; the data dir itself stays 0700
  # The postgres user must be able to traverse every directory above the data dir
  # (e.g. a checkout under a 0700 home). Only add o+x where it is missing.
  local d="$REPO"
  while [[ "$d" != "/" ]]; do
    if ! as_pg test -x "$d"; then
      log "adding o+x to $d so user postgres can reach the data dir"
      chmod o+x "$d"
    fi
    d="$(dirname "$d")"
  done
}

init_cluster() {
  [[ -f "$PGDATA/PG_VERSION" ]] && return 0
  log "initdb $PGDATA"
  rm -rf "$PGDATA"  # a half-finished initdb leaves a dir initdb refuses to reuse
  as_pg "$PG_BIN/initdb" -D "$PGDATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
}

# After a crash (kill -9 of the postmaster) its children may live on briefly and
# keep the shared memory block attached, which makes the next start fail. Every
# process of this cluster has PGDATA as its cwd, which identifies them exactly.
reap_orphans() {
  local pids=() p
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/cwd" 2>/dev/null)" == "$PGDATA" ]] && pids+=("${p#/proc/}")
  done
  ((${#pids[@]})) || return 0
  log "waiting for leftover processes of a crashed server: ${pids[*]}"
  for _ in $(seq 50); do
    kill -0 "${pids[@]}" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
  sleep 0.5
}

# What the server logged during this start attempt only.
log_from=1
show_log() { tail -c "+$log_from" "$LOG" 2>/dev/null | tail -n 40 >&2 || true; }

start() {
  install_postgres
  prepare_dirs
  init_cluster

  if is_running; then
    log "already running on port $PORT"
  else
    reap_orphans
    # The postmaster refuses a pid file whose pid still "exists" (a zombie or a
    # recycled pid); nothing of ours is alive now, so the file is stale.
    # The socket lock file holds the same pid and is checked the same way.
    local f
    for f in "$PGDATA/postmaster.pid" "$SOCK_DIR/.s.PGSQL.$PORT.lock" "$SOCK_DIR/.s.PGSQL.$PORT"; do
      if [[ -e "$f" ]]; then
        log "removing stale ${f##*/}"
        rm -f "$f"
      fi
    done
    # Something else (another checkout?) on our port would make us talk to the wrong server.
    if "$PG_BIN/pg_isready" -q -U postgres -h 127.0.0.1 -p "$PORT" -t 1; then
      die "port $PORT is held by another server; set SKYPANEL_PG_PORT to a free port"
    fi

    local opts="-p $PORT -k $SOCK_DIR -c listen_addresses=127.0.0.1 -c max_connections=300"
    opts+=" -c shared_buffers=256MB"
    if [[ "${SKYPANEL_PG_FAST:-}" == 1 ]]; then
      # Tests throw the data away anyway; durability only costs time.
      opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
      log "starting on port $PORT (fast, non-durable mode)"
    else
      log "starting on port $PORT"
    fi
    log_from=$(($(stat -c %s "$LOG" 2>/dev/null || echo 0) + 1))
    pg_ctl_ -l "$LOG" -w -t 60 -o "$opts" start >&2 \
      || { show_log; die "pg_ctl start failed (log: $LOG)"; }
  fi

  local ok=
  for _ in $(seq 60); do
    if "$PG_BIN/pg_isready" -q -U postgres -h 127.0.0.1 -p "$PORT" -t 1; then ok=1; break; fi
    sleep 0.5
  done
  [[ -n "$ok" ]] || { show_log; die "server did not become ready on port $PORT"; }

  local db
  for db in "${DATABASES[@]}"; do
    if [[ -z "$(psql_ -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]]; then
      log "creating database $db"
      psql_ -qc "CREATE DATABASE $db" >&2
    fi
  done
  url skypanel
}

psql_() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"; }

stop() {
  if is_running; then
    log "stopping"
    pg_ctl_ -m fast -w stop >&2
  else
    log "not running"
  fi
}

clean() {
  stop
  log "removing $PG_DIR"
  rm -rf "$PG_DIR"
  [[ "$SOCK_DIR" == "$PG_DIR" ]] || rm -rf "$SOCK_DIR"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  clean) clean ;;
  url) url "${2:-skypanel}" ;;
  *) die "usage: $0 [start|stop|clean|url [DB]]" ;;
esac
