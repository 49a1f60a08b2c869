#!/usr/bin/env bash
# ci/bench pull: a cold pull + unpack of a multi-layer image from a local registry (Debian's
# docker-registry on 127.0.0.1, a port unique to the run), side by side in one run:
#   ours:     runner-agent image pull REF (fresh store under --root each run; owners shifted)
#   baseline: skopeo copy docker://REF oci:DIR:tag && umoci unpack --image DIR:tag BUNDLE
# Prints median, p95 and max of each and the ratio of the medians (ours / baseline; goal <= 1.0).
# Needs RUNNER_BIN (ci/bench sets it to the release build) and root. Tunables: BENCH_RUNS
# (default 7), BENCH_DIR (default /tmp/runner-bench-pull; the image is built there once).
set -euo pipefail

bin="${RUNNER_BIN:?set RUNNER_BIN to the directory holding runner-agent}"
runs="${BENCH_RUNS:-7}"
work="${BENCH_DIR:-/tmp/runner-bench-pull}"
for tool in docker-registry skopeo umoci busybox python3 curl; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (ci/packages.txt)" >&2; exit 1; }
done
[ -x "$bin/runner-agent" ] || { echo "error: $bin/runner-agent is missing: build with swift build -c release" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "error: run as root (owners are applied while unpacking)" >&2; exit 1; }

port=$((20000 + $$ % 20000))
mkdir -p "$work"
reg="$work/registry-$port"
rm -rf "$reg" && mkdir -p "$reg"
cat > "$reg/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $reg/data
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$reg/config.yml" > "$reg/log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true; wait $registry_pid 2>/dev/null || true; rm -rf "$reg"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done

image="$work/image"
if [ ! -f "$image/done" ]; then
    echo "building a 4-layer image under $image"
    rm -rf "$image" && mkdir -p "$image" && cd "$image"
    umoci init --layout oci >/dev/null && umoci new --image oci:img >/dev/null
    umoci unpack --image oci:img bundle >/dev/null
    r=bundle/rootfs
    mkdir -p $r/bin $r/etc && cp /bin/busybox $r/bin/busybox && ln $r/bin/busybox $r/bin/sh
    printf 'ID=alpine\n' > $r/etc/os-release
    umoci repack --image oci:img bundle >/dev/null
    for layer in 1 2 3; do
        python3 - "$r/data$layer" "$layer" <<'PY'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
words = [b"runner", b"registry", b"layer", b"whiteout", b"nspawn", b"\n"]
for i in range(4000):
    d = f"{root}/d{i % 50:02d}"
    os.makedirs(d, exist_ok=True)
    size = rng.randint(256, 16384)
    data = bytearray()
    while len(data) < size:
        data += rng.choice(words) + b" "
    with open(f"{d}/f{i:05d}", "wb") as f:
        f.write(bytes(data[:size]) if i % 5 else rng.randbytes(size))
PY
        umoci repack --image oci:img bundle >/dev/null
    done
    touch "$image/done"
    cd - >/dev/null
fi
ref="127.0.0.1:$port/bench/pull:1"
skopeo copy --quiet --dest-tls-verify=false "oci:$image/oci:img" "docker://$ref"

ours=() base=()
for _ in $(seq "$runs"); do
    root="$work/root" && rm -rf "$root" && mkdir -p "$root/etc/runner"
    printf 'RUNNER_REGISTRIES=127.0.0.1:%s\nRUNNER_IMAGE_CACHE_MAX=0\n' "$port" > "$root/etc/runner/config.env"
    sync
    t0=$(date +%s.%N)
    "$bin/runner-agent" image pull --root "$root" "$ref" >/dev/null 2>&1
    t1=$(date +%s.%N)
    ours+=("$(echo "$t1 - $t0" | bc)")
    rm -rf "$root"
    b="$work/baseline" && rm -rf "$b" && mkdir -p "$b"
    sync
    t0=$(date +%s.%N)
    skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$b/oci:img" >/dev/null
    umoci unpack --image "$b/oci:img" "$b/bundle" >/dev/null
    t1=$(date +%s.%N)
    base+=("$(echo "$t1 - $t0" | bc)")
    rm -rf "$b"
done
python3 - "${ours[*]}" "${base[*]}" <<'PY'
import sys, statistics
def stats(xs):
    xs = sorted(float(x) for x in xs.split())
    p95 = xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]
    return statistics.median(xs), p95, xs[-1]
o, b = stats(sys.argv[1]), stats(sys.argv[2])
print(f"{'pull (cold, 4 layers)':28} {'median':>8} {'p95':>8} {'max':>8}")
print(f"{'runner-agent image pull':28} {o[0]:8.3f} {o[1]:8.3f} {o[2]:8.3f}")
print(f"{'skopeo copy + umoci unpack':28} {b[0]:8.3f} {b[1]:8.3f} {b[2]:8.3f}")
ratio = o[0] / b[0]
print(f"ratio (ours / baseline, medians): {ratio:.2f} {'ok' if ratio <= 1.0 else 'OVER'} (target <= 1.0)")
PY
