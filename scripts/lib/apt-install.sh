# shellcheck shell=bash
# Sourced by scripts/install-*.sh. `apt_install PACKAGE...` installs Debian packages as root
# (or with sudo), waits for a concurrent apt/dpkg instead of failing, and runs `apt-get update`
# only when the package lists do not know one of the packages yet.

apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "apt_install: installing $* needs root or sudo" >&2
            return 1
        fi
        sudo="sudo"
    fi
    local apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
    local package
    for package in "$@"; do
        if ! apt-cache policy "$package" 2>/dev/null | grep -qE 'Candidate: [0-9]'; then
            "${apt[@]}" update -qq
            break
        fi
    done
    "${apt[@]}" install -y -qq --no-install-recommends "$@" >/dev/null
}
