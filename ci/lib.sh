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

# Removes the host-global network objects that test roots leave: their filter tables
# (`inet runner-XXXX`, XXXX four hex digits of the root), job nat tables (`ip runner-XXXX-job-ID`)
# and bridges (`rnXXXX-ID`). A host's own (`inet runner`, `rn-ID`) are never touched. Every
# table slows each later `nft` call, so the integration run starts and ends without them.
remove_test_network_leftovers() {
    [ "$(id -u)" -eq 0 ] || return 0
    local family name link
    if command -v nft >/dev/null; then
        while read -r _ family name; do
            case "$family $name" in
                "inet runner-"[0-9a-f][0-9a-f][0-9a-f][0-9a-f] | "ip runner-"[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-job-*)
                    nft delete table "$family" "$name" 2>/dev/null || true ;;
            esac
        done < <(nft list tables 2>/dev/null)
    fi
    if command -v ip >/dev/null; then
        while read -r link; do
            case "$link" in
                rn[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-*) ip link delete "$link" 2>/dev/null || true ;;
            esac
        done < <(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1)
    fi
}

# Removes a benchmark's host root: its guests (`guest gc --all` with AGENT), the filter table
# of its names (GuestNetworkNames: `inet runner-<4 hex of FNV-1a of ROOT>`), then the tree.
remove_bench_root() {
    local root=$1 agent=$2 table
    RUNNER_HOST_ROOT=$root "$agent" guest gc --all >/dev/null 2>&1 || true
    table=$(python3 -c 'import sys
h = 2166136261
for b in sys.argv[1].encode():
    h = ((h ^ b) * 16777619) & 0xffffffff
print("runner-%04x" % (h & 0xffff))' "$root")
    nft delete table inet "$table" 2>/dev/null || true
    rm -rf "$root"
}
