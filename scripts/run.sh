#!/usr/bin/env bash
# Starts SkyPanel locally for `make run`: the control plane on the dev Postgres (started by
# `make deps`), a local mail catcher so invitation and reset mails can be read, and a first
# platform admin whose login is printed. Ctrl-C stops it; `make stop` stops Postgres.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
DATA="$REPO/.data"
mkdir -p "$DATA"

export SKYPANEL_DATABASE_URL="${SKYPANEL_DATABASE_URL:-$(scripts/dev-postgres.sh url skypanel)}"
export SKYPANEL_LISTEN="${SKYPANEL_LISTEN:-127.0.0.1:8080}"
export SKYPANEL_PUBLIC_URL="${SKYPANEL_PUBLIC_URL:-http://$SKYPANEL_LISTEN}"
ADMIN_EMAIL="${SKYPANEL_ADMIN_EMAIL:-admin@skypanel.localhost}"

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
    trap 'kill $MAILPIT_PID 2>/dev/null || true' EXIT
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

bin/skypanel-controlplane serve
