#!/bin/sh
# setup-worker.sh turns this host into a SkyPanel node. The dashboard hands it out as
#
#   curl -fsSL https://PANEL/setup-worker.sh | sh -s -- --token spen.... [options]
#
# Run it as root. It downloads skypanel-agent and skypanel-installer for this CPU from the
# control plane (/downloads/, each checked against its .sha256), installs them into PREFIX and
# runs skypanel-installer, which checks the host, installs and starts Docker Engine if needed,
# enrolls the agent with the one-time token and keeps it running (a systemd unit, or a
# background process on hosts without systemd). Running it again on an enrolled node is
# harmless: the agent's identity is kept and the agent is (re)started if it is not running.
#
# Options (all but --token are optional):
#   --token TOKEN          one-time enrollment token (spen...), needed for the first enrollment
#   --agent-url URL        the control plane's agent endpoint (default: from the public URL)
#   --advertise-addr IP    address other nodes reach this one at (default: the address of
#                          the interface with the default route)
#   --labels k=v,...       node labels
#   --public-url URL       the control plane (default: the one that served this script)
#   --prefix DIR           where the binaries go (default /usr/local/bin)
#   --data-dir DIR         the agent's state (default /var/lib/skypanel-agent)
#   --docker-host HOST     use this Docker Engine (e.g. unix:///run/docker.sock); never install one
#   --skip-docker-install  fail instead of installing Docker Engine
#   --uninstall            stop and remove the agent (its data stays unless --purge)
#   --purge                with --uninstall: delete the agent's data (identity) too
#
# POSIX sh: it runs under dash.
set -eu

# The control plane replaces this with its public URL when it serves the script.
PUBLIC_URL='@@SKYPANEL_PUBLIC_URL@@'
PREFIX=/usr/local/bin

log() { echo "setup-worker: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,/^# POSIX sh/s/^# \{0,1\}//p' "$0" 2>/dev/null >&2 ||
		echo "usage: setup-worker.sh --token TOKEN [--agent-url URL] [--advertise-addr IP] [--labels k=v,...] [--uninstall [--purge]]" >&2
}

# Arguments for skypanel-installer, collected as positional parameters would be lost in the
# loop: keep them quoted in one string and eval it once at the end.
INSTALLER_ARGS=
add_arg() {
	for a in "$@"; do
		# Single-quote every argument; a ' inside becomes '\''.
		q=$(printf '%s' "$a" | sed "s/'/'\\\\''/g")
		INSTALLER_ARGS="$INSTALLER_ARGS '$q'"
	done
}

UNINSTALL=
need_value() {
	[ "$#" -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"
}
while [ "$#" -gt 0 ]; do
	case "$1" in
	--token | --agent-url | --advertise-addr | --labels | --data-dir | --docker-host)
		need_value "$@"
		add_arg "$1" "$2"
		shift 2
		;;
	--token=* | --agent-url=* | --advertise-addr=* | --labels=* | --data-dir=* | --docker-host=*)
		add_arg "$1"
		shift
		;;
	--public-url)
		need_value "$@"
		PUBLIC_URL=$2
		shift 2
		;;
	--public-url=*)
		PUBLIC_URL=${1#*=}
		shift
		;;
	--prefix)
		need_value "$@"
		PREFIX=$2
		shift 2
		;;
	--prefix=*)
		PREFIX=${1#*=}
		shift
		;;
	--skip-docker-install | --purge)
		add_arg "$1"
		shift
		;;
	--uninstall)
		UNINSTALL=1
		add_arg "$1"
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage
		die "unknown option: $1"
		;;
	esac
done

case "$PUBLIC_URL" in
@@*) die "--public-url is needed when the script does not come from a control plane" ;;
http://* | https://*) ;;
*) die "--public-url must be an http(s) URL, not '$PUBLIC_URL'" ;;
esac
PUBLIC_URL=${PUBLIC_URL%/}

[ "$(id -u)" -eq 0 ] || die "run me as root (e.g. curl ... | sudo sh -s -- ...)"
[ "$(uname -s)" = Linux ] || die "SkyPanel nodes run Linux, this is $(uname -s)"
case "$(uname -m)" in
x86_64 | amd64) ARCH=amd64 ;;
aarch64 | arm64) ARCH=arm64 ;;
*) die "unsupported CPU architecture $(uname -m)" ;;
esac
command -v sha256sum >/dev/null || die "sha256sum is missing (coreutils)"
if command -v curl >/dev/null; then
	fetch() { curl -fsSL --retry 3 --connect-timeout 10 -o "$2" "$1"; }
elif command -v wget >/dev/null; then
	fetch() { wget -q -T 30 -t 3 -O "$2" "$1"; }
else
	die "curl or wget is needed"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/skypanel-setup.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# download NAME: fetch $PUBLIC_URL/downloads/NAME-linux-ARCH and its .sha256, check it and
# install it as $PREFIX/NAME. The new file replaces the old one by rename, so a running
# agent keeps its (old) binary until it restarts.
download() {
	name=$1
	file=$name-linux-$ARCH
	log "downloading $PUBLIC_URL/downloads/$file"
	fetch "$PUBLIC_URL/downloads/$file" "$TMP/$file" || die "cannot download $PUBLIC_URL/downloads/$file"
	fetch "$PUBLIC_URL/downloads/$file.sha256" "$TMP/$file.sha256" || die "cannot download $file.sha256"
	want=$(cut -d ' ' -f 1 "$TMP/$file.sha256")
	got=$(sha256sum "$TMP/$file" | cut -d ' ' -f 1)
	[ -n "$want" ] && [ "$want" = "$got" ] || die "checksum mismatch for $file (want $want, got $got)"
	mkdir -p "$PREFIX"
	cp "$TMP/$file" "$PREFIX/.$name.new"
	chmod 0755 "$PREFIX/.$name.new"
	mv -f "$PREFIX/.$name.new" "$PREFIX/$name"
}

if [ -n "$UNINSTALL" ]; then
	# The installer knows what it installed; fetch it only if it is gone already.
	[ -x "$PREFIX/skypanel-installer" ] || download skypanel-installer
	log "uninstalling"
	eval "set -- $INSTALLER_ARGS"
	"$PREFIX/skypanel-installer" --public-url "$PUBLIC_URL" --prefix "$PREFIX" "$@" </dev/null
	rm -f "$PREFIX/skypanel-installer"
	log "done"
	exit 0
fi

download skypanel-agent
download skypanel-installer
eval "set -- $INSTALLER_ARGS"
# Not exec: the EXIT trap removes the downloads. Under `curl ... | sh` stdin is this
# script, so nothing below may read it.
"$PREFIX/skypanel-installer" --public-url "$PUBLIC_URL" --prefix "$PREFIX" "$@" </dev/null
