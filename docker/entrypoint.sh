#!/bin/sh
# Image entrypoint: one image, one process per container, chosen by command.
#
#   web        apply migrations, then run gunicorn on 0.0.0.0:${PORT:-8000}
#   consumer   python manage.py run_consumer
#   publisher  python manage.py publish_events [ARGS...]
#   migrate    python manage.py migrate --noinput
#   anything else is run as given (e.g. "python manage.py shell")
set -eu

cmd=${1:-web}
[ $# -gt 0 ] && shift

case "$cmd" in
web)
    python manage.py migrate --noinput
    # The config file holds the worker settings; the bind address is the
    # container's concern, so it is given here.
    exec gunicorn loggregator_site.wsgi:application \
        --config loggregator_site/gunicorn.conf.py \
        --bind "0.0.0.0:${PORT:-8000}" "$@"
    ;;
consumer)
    exec python manage.py run_consumer "$@"
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
