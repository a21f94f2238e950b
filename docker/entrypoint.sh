#!/bin/sh
# Image entrypoint: one image, one process per container, chosen by command.
#
#   web        apply migrations, then run gunicorn ($GUNICORN_BIND, GUNICORN_*)
#   consumer   python manage.py run_consumer, once the migrations are applied
#   streams    the stream process: gunicorn with one worker and no consumer,
#              at nice 10, for GET /events/stream (see README, "A stream process")
#   publisher  python manage.py publish_events [ARGS...]
#   migrate    python manage.py migrate --noinput
#   anything else is run as given (e.g. "python manage.py shell")
set -eu

cmd=${1:-web}
[ $# -gt 0 ] && shift

case "$cmd" in
web)
    python manage.py migrate --noinput
    exec gunicorn loggregator_site.asgi:application \
        --config loggregator_site/gunicorn.conf.py "$@"
    ;;
consumer)
    # web applies the migrations when it starts; consume once they are in.
    trap 'exit 143' TERM INT
    until python manage.py migrate --check >/dev/null 2>&1; do sleep 2; done
    exec python manage.py run_consumer "$@"
    ;;
streams)
    # web applies the migrations when it starts; serve once they are in.
    trap 'exit 143' TERM INT
    until python manage.py migrate --check >/dev/null 2>&1; do sleep 2; done
    # nice execs gunicorn: it stays the container's main process and gets its signals.
    GUNICORN_WORKERS=${GUNICORN_STREAM_WORKERS:-1} LOGGREGATOR_INPROCESS_CONSUMER=false \
        exec nice -n 10 gunicorn loggregator_site.asgi:application \
        --config loggregator_site/gunicorn.conf.py "$@"
    ;;
publisher)
    exec python manage.py publish_events "$@"
    ;;
migrate)
    exec python manage.py migrate --noinput "$@"
    ;;
*)
    exec "$cmd" "$@"
    ;;
esac
