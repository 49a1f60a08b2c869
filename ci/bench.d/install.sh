#!/usr/bin/env bash
# ci/bench install: runner-agent install against the bare tools doing the same core work, in one run.
#   install:    runner-agent install --bundle on a fresh temporary root (all nine steps: bundle
#               verify+unpack, host files, useradd, runner tarball download+sha256+safe extraction,
#               sudoers with visudo, marker), the tarball served from 127.0.0.1
#   bare:       curl + sha256sum + tar -xzf of the same tarball + useradd + visudo on a fresh root
#   second run: runner-agent install on the installed root (every step "already done")
# Needs root and RUNNER_BIN (ci/bench sets it). Tunables: BENCH_RUNS (default 5),
# BENCH_DIR (default /tmp/runner-bench-install; the generated tarball is kept and reused).
set -euo pipefail

bin="${RUNNER_BIN:?set RUNNER_BIN to the directory holding runner-build, runner-agent and runner-hook}"
runs="${BENCH_RUNS:-5}"
work="${BENCH_DIR:-/tmp/runner-bench-install}"
here="$(cd "$(dirname "$0")/../.." && pwd)"
spec="v1 files=3000 seed=7"

[ "$(id -u)" = 0 ] || { echo "error: ci/bench install needs root (useradd into a temporary root)" >&2; exit 1; }
for tool in python3 bsdtar curl hyperfine useradd visudo sha256sum; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (ci/packages.txt)" >&2; exit 1; }
done
for exe in runner-build runner-agent runner-hook; do
    [ -x "$bin/$exe" ] || { echo "error: $bin/$exe is missing: build with swift build -c release" >&2; exit 1; }
done

mkdir -p "$work/serve"
tarball="$work/serve/actions-runner-linux-x64-2.336.0.tar.gz"
if [ "$(cat "$work/tarball.spec" 2>/dev/null || true)" != "$spec" ]; then
    echo "generating a runner-like tarball"
    rm -rf "$work/pkg" "$tarball"
    python3 - "$work/pkg" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(7)
def put(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
# Like actions/runner's package: many small managed assemblies, a few large native files.
for i in range(3000):
    put(f"{root}/bin/lib{i % 30:02d}/Assembly{i:04d}.dll", rng.randbytes(rng.randint(2, 24) * 1024))
for i in range(6):
    put(f"{root}/externals/node{i}/bin/node", rng.randbytes(8 << 20), 0o755)
put(f"{root}/config.sh", b"#!/bin/bash\necho config\n", 0o755)
put(f"{root}/run.sh", b"#!/bin/bash\necho run\n", 0o755)
PY
    bsdtar -czf "$tarball" -C "$work/pkg" .
    echo "$spec" >"$work/tarball.spec"
fi
sha=$(sha256sum "$tarball" | cut -d' ' -f1)
echo "runner tarball: $(du -m "$tarball" | cut -f1) MiB, $(find "$work/pkg" -type f | wc -l) files"

"$bin/runner-build" bundle --version v1.0 --agent "$bin/runner-agent" --out "$work" --source "$here" --force >/dev/null
bundle=$(ls "$work"/runner-bundle-v1.0-linux-*.tar.gz)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/serve" "$port" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
url="http://127.0.0.1:$port/$(basename "$tarball")"

cat >"$work/fresh-root.sh" <<SH
#!/bin/sh
# A fresh host root: the host's user database and a config.env.
set -e
root="\$1"
rm -rf "\$root"
mkdir -p "\$root/etc/runner"
for f in passwd group shadow gshadow login.defs; do cp -p "/etc/\$f" "\$root/etc/\$f"; done
cat >"\$root/etc/runner/config.env" <<CFG
RUNNER_GITHUB_URL=https://github.com/acme
RUNNER_USER=ci-runner
RUNNER_VERSION=2.336.0
RUNNER_TARBALL_URL=$url
RUNNER_TARBALL_SHA256=$sha
CFG
chmod 600 "\$root/etc/runner/config.env"
SH
chmod +x "$work/fresh-root.sh"
cat >"$work/bare.sh" <<SH
#!/bin/sh
# The same core work with the bare tools.
set -e
root="\$1"
mkdir -p "\$root/var/cache/runner" "\$root/opt/actions-runner" "\$root/etc/sudoers.d"
curl -sf -o "\$root/var/cache/runner/r.tar.gz" "$url"
echo "$sha  \$root/var/cache/runner/r.tar.gz" | sha256sum -c --quiet
tar -xzf "\$root/var/cache/runner/r.tar.gz" -C "\$root/opt/actions-runner"
useradd --prefix "\$root" --system --user-group --no-create-home --home-dir /home/ci-runner ci-runner
chown -R ci-runner: "\$root/opt/actions-runner" 2>/dev/null || chown -R 999:999 "\$root/opt/actions-runner"
echo 'ci-runner ALL=(root) NOPASSWD: /usr/local/bin/ci-nspawn-run' >"\$root/etc/sudoers.d/runner"
visudo -c -q -f "\$root/etc/sudoers.d/runner"
SH
chmod +x "$work/bare.sh"

"$work/fresh-root.sh" "$work/installed"
"$bin/runner-agent" install --root "$work/installed" --bundle "$bundle" >/dev/null

hyperfine --runs "$runs" --warmup 1 --export-json "$work/results.json" \
    --prepare "$work/fresh-root.sh $work/root" \
    -n "runner-agent install (fresh root)" "$bin/runner-agent install --root $work/root --bundle $bundle" \
    -n "bare: curl+sha256sum+tar+useradd+visudo" "$work/bare.sh $work/root" \
    -n "runner-agent install (second run)" "$bin/runner-agent install --root $work/installed --bundle $bundle"

python3 - "$work/results.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
install = results["runner-agent install (fresh root)"]["median"]
bare = results["bare: curl+sha256sum+tar+useradd+visudo"]["median"]
again = results["runner-agent install (second run)"]["median"]
print(f"median: install {install*1000:.0f} ms, bare tools {bare*1000:.0f} ms, second run {again*1000:.0f} ms")
print(f"ratio install/bare: {install/bare:.2f}; second run/install: {again/install:.2f}")
PY
