# Shared by ci/test, ci/release and ci/bench. Sourced, not run.
# shellcheck shell=bash

ci_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages listed in ci/packages.txt that are missing (needs root).
ensure_packages() {
    local missing=() pkg
    while read -r pkg; do
        case "$pkg" in '' | '#'*) continue ;; esac
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done <"$ci_root/ci/packages.txt"
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    fi
    say "installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# Fails with a clear message when the Swift toolchain is missing.
ensure_swift() {
    command -v swift >/dev/null 2>&1 && return 0
    [ -x /opt/swift/usr/bin/swift ] && { export PATH="/opt/swift/usr/bin:$PATH"; return 0; }
    die "no Swift toolchain on PATH: install Swift 6.2 or later (https://www.swift.org/install/linux/) and retry"
}
