#!/usr/bin/env bash
# Build the payout-api and payout-processor images on this machine with podman, without a
# container registry or a package index (docs/images-offline.md).
#
#   scripts/images-local.sh                 # or: make images-local
#   IMAGE_TAG=dev scripts/images-local.sh   # tag other than "local"
#
# 1. podman, runc and debootstrap from apt when missing (root only).
# 2. A stand-in for the Dockerfile's base image (no registry to pull it from): Debian bookworm
#    made with debootstrap, imported under the exact name of the Dockerfile's FROM. Skipped
#    when an image of that name exists (the real one, or a stand-in made earlier).
# 3. A wheelhouse on the host: the locked dependencies (uv export, with hashes) plus the build
#    tools the Dockerfile installs (uv, hatchling) for the base image's Python, cached per
#    uv.lock hash.
# 4. Both targets of the project's Dockerfile: the wheelhouse is mounted for the RUN steps, its
#    build argument UV_INSTALL_ARGS points uv and pip at it, and the build runs with
#    --network none, so nothing can come from the network.
#
# Exit status 3 means "containers cannot be built or run here" (the e2e test skips on it);
# any other failure is a real error. Each step's output is in $IMAGES_CACHE_DIR/*.log.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib/apt-install.sh
. scripts/lib/apt-install.sh

export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/deploy/podman/containers.conf}"
CACHE="${IMAGES_CACHE_DIR:-$ROOT/.cache/images-local}"
IMAGE_TAG="${IMAGE_TAG:-local}"
TARGETS=(api processor)
UV="$ROOT/.tools/bin/uv"
PIP="$ROOT/.tools/bin/pip"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CANNOT_BUILD_HERE=3
mkdir -p "$CACHE"

log() { printf 'images-local [%3ss]: %s\n' "$SECONDS" "$*" >&2; }
cannot_build_here() {
    log "cannot build or run containers here: $*"
    exit "$CANNOT_BUILD_HERE"
}
# quietly NAME COMMAND...: the output goes to $CACHE/NAME.log, shown only when it fails.
quietly() {
    local name="$1"
    shift
    "$@" >"$CACHE/$name.log" 2>&1 && return 0
    tail -n 40 "$CACHE/$name.log" >&2
    log "failed: $* (log: $CACHE/$name.log)"
    return 1
}

# The base image exactly as docker/podman would resolve the FROM line's short name.
dockerfile_arg() { sed -n "s/^ARG $1=//p" Dockerfile | head -n 1; }
qualified_name() {
    local name="$1"
    if [[ "$name" != */* ]]; then
        name="docker.io/library/$name"
    elif [[ "${name%%/*}" != *[.:]* && "${name%%/*}" != localhost ]]; then
        name="docker.io/$name"
    fi
    printf '%s\n' "$name"
}
BASE_IMAGE="$(qualified_name "$(dockerfile_arg PYTHON_IMAGE)")"
UV_VERSION="$(dockerfile_arg UV_VERSION)"

install_tools() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    podman image exists "$BASE_IMAGE" 2>/dev/null || command -v debootstrap >/dev/null \
        || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || cannot_build_here "${missing[*]} missing and not root to install them"
    command -v apt-get >/dev/null || cannot_build_here "${missing[*]} missing and no apt-get"
    log "installing ${missing[*]}"
    quietly apt-install apt_install "${missing[@]}" \
        || cannot_build_here "apt-get install ${missing[*]} failed"
}

# Debian 12 minbase + python3 (3.11), trimmed like the slim images (no apt lists, docs, man
# pages or locales), with what the python image provides: `python` and `python3` on PATH.
make_stand_in_base() {
    [ "$(id -u)" -eq 0 ] || cannot_build_here "debootstrap needs root"
    local rootfs="$CACHE/stand-in-rootfs"
    rm -rf "$rootfs"
    log "making a stand-in for $BASE_IMAGE with debootstrap (Debian bookworm, Python 3.11)"
    quietly debootstrap debootstrap --variant=minbase \
        --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$DEBIAN_MIRROR"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/*
    ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python3"
    ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
    tar -C "$rootfs" -c . | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'LABEL org.opencontainers.image.description="local stand-in: debootstrap bookworm"' \
        --change 'CMD ["python3"]' \
        - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
}

# "3.11 2.36 x86_64": Python, glibc and machine of the base image; running a container here is
# also the check that podman can run at all.
base_platform() {
    local out
    out="$(podman run --rm --network none "$BASE_IMAGE" python3 -c 'import platform, sys
print("%d.%d" % sys.version_info[:2], platform.libc_ver()[1], platform.machine())' 2>&1)" \
        || cannot_build_here "podman cannot run a container: $out"
    printf '%s\n' "$out" | tail -n 1
}

# The wheels of the locked dependencies of both services, and of the tools the Dockerfile
# installs during the build, for the base image's Python and glibc.
make_wheelhouse() {
    local python_version="$1" glibc="$2" machine="$3" wheelhouse="$4"
    local tmp="$wheelhouse.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    log "downloading the wheelhouse for Python $python_version, glibc $glibc into $wheelhouse"
    local target=(--only-binary=:all: --python-version "$python_version"
        --dest "$tmp" --disable-pip-version-check)
    # pip does not widen manylinux_2_N to the older glibc versions: name each one.
    local minor
    for minor in $(seq 5 "${glibc#2.}"); do target+=(--platform "manylinux_2_${minor}_$machine"); done
    target+=(--platform "manylinux2014_$machine" --platform "manylinux1_$machine")
    for target_name in "${TARGETS[@]}"; do
        quietly "export-$target_name" "$UV" export --frozen --no-dev --no-emit-workspace \
            --package "payout-$target_name" --output-file "$tmp/requirements-$target_name.txt"
        quietly "download-$target_name" "$PIP" download "${target[@]}" --require-hashes \
            -r "$tmp/requirements-$target_name.txt"
    done
    # uv for the builder stage; hatchling (and editables, for its editable wheels) to build
    # the workspace members.
    quietly download-tools "$PIP" download "${target[@]}" "uv==$UV_VERSION" hatchling editables
    rm -rf "$wheelhouse" && mv "$tmp" "$wheelhouse"
}

# The wheelhouse is mounted on /mnt for every RUN step: a directory every Debian-based image
# has, because a mount on a path the image lacks leaves an empty mount point in the layers.
build_images() {
    local wheelhouse="$1"
    for target_name in "${TARGETS[@]}"; do
        log "building payout-$target_name:$IMAGE_TAG"
        # --format docker: the OCI image format has no HEALTHCHECK.
        quietly "build-$target_name" podman build --format docker --network none --layers \
            --target "$target_name" --tag "payout-$target_name:$IMAGE_TAG" \
            --build-arg UV_INSTALL_ARGS="--no-index --find-links /mnt" \
            --volume "$wheelhouse:/mnt:ro" --file Dockerfile .
    done
}

main() {
    install_tools
    local info
    info="$(podman info 2>&1 >/dev/null)" || cannot_build_here "podman does not start: $info"
    [ -x "$UV" ] && [ -x "$PIP" ] || make --no-print-directory install >/dev/null
    if podman image exists "$BASE_IMAGE"; then
        log "using the existing $BASE_IMAGE"
    else
        make_stand_in_base
    fi
    local platform python_version glibc machine lock_hash wheelhouse
    platform="$(base_platform)"
    read -r python_version glibc machine <<<"$platform"
    lock_hash="$(cat uv.lock <(echo "$UV_VERSION") | sha256sum | cut -c1-16)"
    wheelhouse="$CACHE/wheelhouse-py$python_version-glibc$glibc-$machine-$lock_hash"
    if [ -d "$wheelhouse" ]; then
        log "using the cached wheelhouse $wheelhouse"
    else
        find "$CACHE" -maxdepth 1 -type d -name 'wheelhouse-*' -exec rm -rf {} +
        make_wheelhouse "$python_version" "$glibc" "$machine" "$wheelhouse"
    fi
    build_images "$wheelhouse"
    log "done"
    for target_name in "${TARGETS[@]}"; do
        local size
        size="$(podman image inspect --format '{{.Size}}' "payout-$target_name:$IMAGE_TAG")"
        printf 'payout-%s:%s  %s MB\n' "$target_name" "$IMAGE_TAG" "$((size / 1000000))"
    done
}

main "$@"
