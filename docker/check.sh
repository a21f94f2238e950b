#!/usr/bin/env bash
# The whole Docker check, for real, on this machine:
#   start an engine of our own if none answers (docker/start-dockerd.sh),
#   make the stand-in base image if the base tag is missing,
#   build the app image, start web + consumer + streams, wait until all are healthy,
#   publish a round with the publisher service (publish_events --verify:
#   it checks the counters grew by exactly what it sent), check /stats adds up, read every stored event once
#   from the streams service's live tail, restart the stack and check the
#   counts survived on the volume and that SIGTERM stopped every process
#   cleanly, check the logs hold no error, then remove the stack and its
#   volume.
# Exit status 0 only if every step passed. It runs its own Compose project
# (loggregator-check) and image tag, so a stack you run is not touched.
#
# Environment: LOGGREGATOR_CHECK_EVENTS (2000); LOGGREGATOR_KEEP_ENGINE=1
# leaves an engine this script started running; LOGGREGATOR_CHECK_PROGRESS
# (quiet) is Compose's --progress; see start-dockerd.sh for the engine's
# own settings.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools.sh
. "$here/tools.sh"
ensure_tools

EVENTS=${LOGGREGATOR_CHECK_EVENTS:-2000}
PROJECT=loggregator-check
started=$(date +%s)
log() { echo "docker check [$(($(date +%s) - started))s]: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

export DOCKER_HOST=unix://${LOGGREGATOR_DOCKER_SOCK:-/run/loggregator-docker.sock}
engine_started=0
if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    "$here/start-dockerd.sh" >/dev/null
    engine_started=1
fi
"$here/make-base-image.sh"

envfile=$(mktemp)
buildlog=$(mktemp)
# No SECRET_KEY, as on a fresh clone: the stack generates one into its volume.
cat >"$envfile" <<EOF
DEBUG=false
LOGGREGATOR_PORT=127.0.0.1:
LOGGREGATOR_STREAM_PORT=127.0.0.1:
LOGGREGATOR_IMAGE=loggregator:check
LOGGREGATOR_INPROCESS_CONSUMER=false
EOF

compose() {
    "$COMPOSE" --project-directory "$here" -f "$here/compose.yaml" \
        -p "$PROJECT" --env-file "$envfile" --progress "${LOGGREGATOR_CHECK_PROGRESS:-quiet}" "$@"
}

cleanup() {
    rc=$?
    trap - EXIT
    if [ "$rc" != 0 ]; then
        log "logs of the stack:"
        compose ps -a >&2 || true
        compose logs --no-color --tail 60 >&2 || true
    fi
    compose down -v --remove-orphans --timeout 45 >/dev/null 2>&1 || true
    rm -f "$envfile" "$buildlog"
    if [ "$engine_started" = 1 ] && [ "${LOGGREGATOR_KEEP_ENGINE:-0}" != 1 ]; then
        "$here/stop-dockerd.sh" || true
    fi
    if [ "$rc" = 0 ]; then
        log "all passed"
    else
        log "failed (exit $rc)"
    fi
    exit "$rc"
}
trap cleanup EXIT

stats() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1] + "/stats", timeout=10).read().decode())' "$url"; }
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# A run killed half-way may have left its stack behind.
compose down -v --remove-orphans >/dev/null 2>&1 || true

log "building the image"
nice -n 10 "$COMPOSE" --project-directory "$here" -f "$here/compose.yaml" \
    -p "$PROJECT" --env-file "$envfile" --progress plain build web >"$buildlog" 2>&1 \
    || { tail -40 "$buildlog" >&2; fail "image build"; }

log "starting web, consumer and streams, waiting until healthy"
compose up -d --wait --wait-timeout 180 web consumer streams || fail "stack did not become healthy"
url=http://$(compose port web 8000)
stream_url=http://$(compose port streams 8000)
log "web is healthy at $url, streams at $stream_url"

uid=$(compose exec -T web id -u)
[ "$uid" != 0 ] || fail "web runs as root"
for service in consumer streams; do
    uid=$(compose exec -T "$service" id -u)
    [ "$uid" != 0 ] || fail "$service runs as root"
done
log "processes run as uid $uid, not root"

before=$(stats)
[ "$(field "$before" received)" = 0 ] || fail "a new stack should start at 0: $before"

log "publishing a round with the publisher service: $EVENTS events, --verify"
compose run --rm -T publisher publisher --rounds 1 --events "$EVENTS" \
    --interval 0 0 --verify --max-retries 5 \
    || fail "publisher round"

log "waiting for the consumer to drain the queue"
drained=""
for _ in $(seq 1 120); do
    now=$(stats)
    received=$(field "$now" received)
    unique=$(field "$now" unique_processed)
    dups=$(field "$now" duplicate_dropped)
    queued=$(field "$now" queued)
    if [ "$received" -gt 0 ] && [ "$queued" = 0 ] && [ $((unique + dups)) = "$received" ]; then
        drained=$now
        break
    fi
    sleep 1
done
[ -n "$drained" ] || fail "queue not drained in 120 s: $now"
[ "$dups" -gt 0 ] || fail "the round re-sent events, but no duplicate was dropped: $now"
log "/stats: $drained"
[ "$received" = "$EVENTS" ] || fail "received $received, the publisher sent $EVENTS"
log "counts add up: received $received = unique $unique + duplicates $dups, queued 0"

log "reading the store from the start on the streams service's live tail"
# Every stored event once: a stream from position 0, ended once it has them all (or after 60 s).
streamed=$(python3 - "$stream_url" "$unique" <<'EOF'
import json, sys, time, urllib.request
url, expected = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
keys = []
with urllib.request.urlopen(f"{url}/events/stream?topic=%3E&after=0", timeout=30) as response:
    for line in response:
        if line.startswith(b"data: "):
            event = json.loads(line[len(b"data: "):])
            keys.append((event["topic"], event["event_id"]))
        if len(keys) >= expected or time.monotonic() > deadline:
            break
print(f"{len(keys)} {len(set(keys))}")
EOF
)
[ "$streamed" = "$unique $unique" ] || fail "the stream sent (events, distinct) = $streamed; $unique are stored"
log "the streams service sent each of the $unique stored events once"

log "stopping the stack (SIGTERM) and starting it again on the same volume"
compose stop --timeout 45 web consumer streams >/dev/null || fail "compose stop"
for service in web consumer streams; do
    code=$(docker inspect --format '{{.State.ExitCode}}' "$(compose ps -a -q "$service")")
    [ "$code" = 0 ] || fail "$service exited with $code on SIGTERM (137 means it was killed)"
done
log "web, consumer and streams exited 0 on SIGTERM"
compose up -d --wait --wait-timeout 180 web consumer streams || fail "stack did not come back healthy"
url=http://$(compose port web 8000)
again=$(stats)
for key in received unique_processed duplicate_dropped; do
    [ "$(field "$again" "$key")" = "$(field "$drained" "$key")" ] \
        || fail "$key changed across a restart: $drained -> $again"
done
log "counts survived the restart on the named volume"

# Nothing went wrong on the way (both runs), even where no request failed.
if compose logs --no-color web consumer streams | grep -E 'Traceback|\[ERROR\]| ERROR ' >&2; then
    fail "errors in the logs of web, consumer or streams (above)"
fi
log "no errors in the logs"
