#!/usr/bin/env bash
# Stop the engine that docker/start-dockerd.sh started (by its pidfile only;
# no other dockerd is touched). Containers it still runs are stopped with it.
set -euo pipefail
PIDFILE=${LOGGREGATOR_DOCKER_PIDFILE:-/run/loggregator-docker.pid}
if [ ! -s "$PIDFILE" ]; then
    echo "stop-dockerd: no pidfile $PIDFILE; nothing to stop" >&2
    exit 0
fi
pid=$(cat "$PIDFILE")
if ! kill -0 "$pid" 2>/dev/null; then
    echo "stop-dockerd: pid $pid is gone; removing $PIDFILE" >&2
    rm -f "$PIDFILE"
    exit 0
fi
kill -TERM "$pid"
for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { echo "stop-dockerd: stopped $pid" >&2; exit 0; }
    sleep 1
done
echo "stop-dockerd: dockerd $pid still runs after 60 s" >&2
exit 1
