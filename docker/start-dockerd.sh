#!/usr/bin/env bash
# Start a Docker engine of our own in the background, unless one already
# answers on our socket, and wait until it does.
#
# It uses its own socket, data root, exec root and pidfile, so it never meets
# a system dockerd. Print the DOCKER_HOST to use on stdout; everything else
# goes to stderr. Stop it with docker/stop-dockerd.sh.
#
# Environment:
#   LOGGREGATOR_DOCKER_SOCK      socket path   (/run/loggregator-docker.sock)
#   LOGGREGATOR_DOCKER_ROOT      data root     (/var/lib/loggregator-docker)
#   LOGGREGATOR_DOCKER_PIDFILE   pidfile       (/run/loggregator-docker.pid)
#   LOGGREGATOR_DOCKER_NET       "bridge" (default) or "host": with "host" the
#                                engine runs with --iptables=false --bridge=none,
#                                for machines where the bridge can't be set up
set -euo pipefail

SOCK=${LOGGREGATOR_DOCKER_SOCK:-/run/loggregator-docker.sock}
ROOT=${LOGGREGATOR_DOCKER_ROOT:-/var/lib/loggregator-docker}
PIDFILE=${LOGGREGATOR_DOCKER_PIDFILE:-/run/loggregator-docker.pid}
EXEC_ROOT=${LOGGREGATOR_DOCKER_EXEC_ROOT:-/run/loggregator-docker}
LOG=${LOGGREGATOR_DOCKER_LOG:-/var/log/loggregator-dockerd.log}
NET=${LOGGREGATOR_DOCKER_NET:-bridge}
export DOCKER_HOST="unix://$SOCK"

log() { echo "start-dockerd: $*" >&2; }
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools.sh
. "$here/tools.sh"

ping() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ping; then
    log "engine already answers on $SOCK"
    echo "$DOCKER_HOST"
    exit 0
fi

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v iptables >/dev/null || need_apt+=(iptables)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]} from Debian"
    quietly /var/log/loggregator-docker-apt.log sh -c \
        'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"' \
        apt-install "${need_apt[@]}"
fi
# The docker.io package brings a client too; any client that speaks to the
# engine's API version will do (a newer one in /usr/local/bin is fine).
command -v docker >/dev/null || { log "no docker client found"; exit 1; }

# A stale pidfile from a dead engine would stop dockerd from starting.
if [ -s "$PIDFILE" ]; then
    old=$(cat "$PIDFILE")
    if kill -0 "$old" 2>/dev/null; then
        log "dockerd pid $old from $PIDFILE runs but does not answer; waiting for it"
    else
        rm -f "$PIDFILE"
    fi
fi

mkdir -p "$ROOT" "$EXEC_ROOT" "$(dirname "$LOG")"
args=(
    --host "unix://$SOCK"
    --data-root "$ROOT"
    --exec-root "$EXEC_ROOT"
    --pidfile "$PIDFILE"
    --storage-driver overlay2
)
if [ "$NET" = host ]; then
    args+=(--iptables=false --bridge=none)
fi

if [ ! -s "$PIDFILE" ]; then
    log "starting dockerd (log: $LOG)"
    # setsid: the engine must outlive this script and its process group.
    setsid dockerd "${args[@]}" >>"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
    if ping; then
        log "engine $(docker version --format '{{.Server.Version}}') up on $SOCK"
        echo "$DOCKER_HOST"
        exit 0
    fi
    sleep 1
done
log "dockerd did not answer within 60 s; last lines of $LOG:"
tail -20 "$LOG" >&2
exit 1
