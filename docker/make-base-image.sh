#!/usr/bin/env bash
# Build a local stand-in for the base image python:3.11-slim-bookworm, for
# machines that can't pull from an image registry but reach Debian's
# packages and PyPI.
#
# The stand-in is a minimal Debian bookworm (debootstrap) with Debian's
# Python 3.11, its venv module and pip, imported under the real tag so that
# docker/Dockerfile builds unchanged. Like the real image it has `python` and
# `pip` on PATH in /usr/local/bin. The host's CA bundle and the
# certificate setting of its pip go in too, so pip inside a build trusts the
# same certificates as pip on the host. Nothing else of the host's pip
# configuration is copied: its extra indexes are folders on this disk, and
# pip in the image uses the default index, as pip on the host does.
#
# The debootstrap tree is kept as a tarball in $CACHE, so a rerun only
# imports it again (seconds). An image already under the tag is left alone
# unless --force is given (so a real, pulled image is never replaced).
#
# Needs a running engine: DOCKER_HOST as printed by docker/start-dockerd.sh.
set -euo pipefail

TAG=${LOGGREGATOR_BASE_IMAGE:-python:3.11-slim-bookworm}
CACHE=${LOGGREGATOR_DOCKER_CACHE:-/var/cache/loggregator-docker}
MIRROR=${LOGGREGATOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
TARBALL=$CACHE/$SUITE-python3-rootfs.tar
CA_BUNDLE=${LOGGREGATOR_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
FORCE=0
[ "${1:-}" = --force ] && FORCE=1

log() { echo "make-base-image: $*" >&2; }
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools.sh
. "$here/tools.sh"

if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG is already there; nothing to do (--force rebuilds the stand-in)"
    exit 0
fi

if [ ! -s "$TARBALL" ] || [ "$FORCE" = 1 ]; then
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap from Debian"
        quietly /var/log/loggregator-docker-apt.log sh -c \
            'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap'
    fi
    mkdir -p "$CACHE"
    root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    # debootstrap mounts /proc and /sys inside the tree while it works: a
    # failed run may leave them mounted, so unmount before removing, and never
    # cross into another filesystem.
    cleanup_root() {
        grep -o " $root/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l || true
        rm -rf --one-file-system "$root"
    }
    trap cleanup_root EXIT
    log "debootstrap $SUITE into $root (a few minutes)"
    # minbase: dpkg, apt and the essential packages only, like the slim image.
    quietly "$CACHE/debootstrap.log" nice debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates,netbase,tzdata \
        "$SUITE" "$root" "$MIRROR"

    # Like python:*-slim: `python` and `pip` in /usr/local/bin.
    ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
    ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
    # Trust what the host trusts, so pip reaches PyPI through this network.
    if [ -s "$CA_BUNDLE" ]; then
        cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
        printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
    fi
    # Slim down: package lists and caches, docs, man pages.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    # Pin the sources to the mirror we used.
    echo "deb $MIRROR $SUITE main" >"$root/etc/apt/sources.list"

    log "packing $TARBALL"
    tar -C "$root" --numeric-owner -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    cleanup_root
    trap - EXIT
fi

log "importing $TARBALL as $TAG"
docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHON_VERSION=3.11' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'LABEL org.loggregator.stand-in=debootstrap-bookworm' \
    --change 'CMD ["python3"]' \
    "$TARBALL" "$TAG" >/dev/null
docker run --rm "$TAG" sh -c 'python --version && pip --version && python -m venv /tmp/v && /tmp/v/bin/pip --version' >&2
log "done: $TAG"
