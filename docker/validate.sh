#!/usr/bin/env bash
# Check the Docker files offline: no engine, no network after the tools are
# installed. Compose validates docker/compose.yaml with and without the
# postgres profile; hadolint lints docker/Dockerfile (config: docker/.hadolint.yaml).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools.sh
. "$here/tools.sh"
ensure_tools

fail=0
run() {
    if "$@"; then
        echo "ok: $(basename "$1") ${*:2}"
    else
        echo "FAILED: $*"
        fail=1
    fi
}

# The example env file is enough: no setting is required.
cd "$here"
run env -u SECRET_KEY "$COMPOSE" --env-file .env.example -f compose.yaml config -q
export SECRET_KEY=validate-only
run "$COMPOSE" --env-file .env.example -f compose.yaml --profile postgres config -q
# The postgres profile with DATABASE_URL pointing at it, as documented.
DATABASE_URL=postgres://loggregator:x@postgres:5432/loggregator \
    run "$COMPOSE" --env-file .env.example -f compose.yaml --profile postgres config -q
# A given SECRET_KEY reaches the app.
if "$COMPOSE" --env-file .env.example -f compose.yaml config | grep -q "SECRET_KEY: validate-only"; then
    echo "ok: compose passes a given SECRET_KEY"
else
    echo "FAILED: compose did not pass the given SECRET_KEY"
    fail=1
fi
run "$HADOLINT" --config "$here/.hadolint.yaml" Dockerfile
run "$SHELLCHECK" --external-sources --source-path=SCRIPTDIR ./*.sh

if [ "$fail" = 0 ]; then
    echo "docker validate: all passed"
else
    echo "docker validate: failures above"
fi
exit "$fail"
