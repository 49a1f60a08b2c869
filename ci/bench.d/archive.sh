#!/usr/bin/env bash
# ci/bench archive: our libarchive layer against bsdtar, side by side in one run.
#   writer:     runner-build archive create (the bundle writer's code path) vs bsdtar -czf, both gzip level 6
#   extraction: runner-agent archive extract (safe extraction) vs bsdtar -xf, same archive
# Needs RUNNER_BIN (ci/bench sets it to the release build). Tunables: BENCH_RUNS (default 5),
# BENCH_DIR (default /tmp/runner-bench-archive; the generated tree is kept there and reused).
set -euo pipefail

bin="${RUNNER_BIN:?set RUNNER_BIN to the directory holding runner-build and runner-agent}"
runs="${BENCH_RUNS:-5}"
work="${BENCH_DIR:-/tmp/runner-bench-archive}"
tree="$work/tree"
level=6
spec="v1 files=20000+400+8 seed=42"

for tool in bsdtar python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (ci/packages.txt)" >&2; exit 1; }
done
for exe in runner-build runner-agent; do
    [ -x "$bin/$exe" ] || { echo "error: $bin/$exe is missing: build with swift build -c release" >&2; exit 1; }
done

mkdir -p "$work"
if [ "$(cat "$work/tree.spec" 2>/dev/null || true)" != "$spec" ]; then
    echo "generating the tree under $tree"
    rm -rf "$tree" "$work/tree.spec"
    python3 - "$tree" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
words = [b"runner", b"archive", b"libarchive", b"systemd", b"nspawn", b"bundle", b"guest", b"hook", b"\n"]
def text(size):
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])
def put(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
# 20,000 small files (compressible text, 512 B - 8 KiB) over 200 directories, two levels deep.
for i in range(20000):
    d = f"{root}/src/pkg{i % 40:02d}/mod{i % 200:03d}"
    put(f"{d}/file{i:05d}.txt", text(rng.randint(512, 8192)), 0o755 if i % 17 == 0 else 0o644)
# 400 medium files: random (incompressible) 128-512 KiB.
for i in range(400):
    put(f"{root}/blobs/b{i % 10}/blob{i:03d}.bin", rng.randbytes(rng.randint(128, 512) * 1024))
# 8 large files: 12 MiB, half random, half text.
for i in range(8):
    put(f"{root}/large/large{i}.img", rng.randbytes(6 << 20) + text(6 << 20))
for i in range(40):
    os.symlink(f"../src/pkg{i:02d}", f"{root}/large/link{i:02d}")
PY
    echo "$spec" >"$work/tree.spec"
fi
files=$(find "$tree" -type f | wc -l)
bytes=$(du -sb "$tree" | cut -f1)
echo "tree: $files files, $((bytes / 1048576)) MiB ($tree)"
if [ "$files" -lt 20000 ] || [ "$bytes" -lt $((200 * 1048576)) ]; then
    echo "error: the tree is too small (want >= 20000 files and >= 200 MiB)" >&2
    exit 1
fi

errors="$work/bench-errors.log"
: >"$errors"
# measure WALLS CPUS command...: runs the command once and appends its wall and CPU (user + sys)
# milliseconds to the arrays named WALLS and CPUS. The CPU time is what to trust on a busy machine.
measure() {
    local -n walls=$1 cpus=$2
    shift 2
    local TIMEFORMAT='%3R %3U %3S' result wall user sys
    sync
    result=$({ time "$@" >/dev/null 2>>"$errors"; } 2>&1) || {
        echo "error: $* failed:" >&2
        cat "$errors" >&2
        exit 1
    }
    read -r wall user sys <<<"$result"
    walls+=("$(awk -v w="$wall" 'BEGIN { printf "%d", w * 1000 }')")
    cpus+=("$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", (u + s) * 1000 }')")
}
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Nothing is deleted while the clock runs: on file systems mounted with `discard`, freeing a
# few hundred MB stalls whichever command runs next. Every run writes new files under $runs_dir,
# removed at the end; the order within a round alternates.
ours_archive="$work/ours.tar.gz"
bsd_archive="$work/bsdtar.tar.gz"
runs_dir="$work/runs"
write_ours() { "$bin/runner-build" archive create --from "$tree" --out "$1" --gzip-level "$level" --force; }
write_bsd() { bsdtar -czf "$1" --options "gzip:compression-level=$level" -C "$tree" .; }
extract_ours() { "$bin/runner-agent" archive extract "$ours_archive" --into "$1"; }
extract_bsd() { mkdir "$1" && bsdtar -xf "$ours_archive" -C "$1"; }

echo "warm-up"
rm -rf "$runs_dir" "$ours_archive" "$bsd_archive"
write_ours "$ours_archive" >/dev/null
write_bsd "$bsd_archive"
mkdir -p "$runs_dir"
sync
sleep 5
w_ours=() w_bsd=() x_ours=() x_bsd=() cw_ours=() cw_bsd=() cx_ours=() cx_bsd=()
for ((i = 1; i <= runs; i++)); do
    if ((i % 2)); then
        measure w_ours cw_ours write_ours "$runs_dir/ours-$i.tar.gz"
        measure w_bsd cw_bsd write_bsd "$runs_dir/bsdtar-$i.tar.gz"
        measure x_ours cx_ours extract_ours "$runs_dir/x-ours-$i"
        measure x_bsd cx_bsd extract_bsd "$runs_dir/x-bsdtar-$i"
    else
        measure w_bsd cw_bsd write_bsd "$runs_dir/bsdtar-$i.tar.gz"
        measure w_ours cw_ours write_ours "$runs_dir/ours-$i.tar.gz"
        measure x_bsd cx_bsd extract_bsd "$runs_dir/x-bsdtar-$i"
        measure x_ours cx_ours extract_ours "$runs_dir/x-ours-$i"
    fi
    echo "run $i/$runs (wall/cpu ms): write ours ${w_ours[-1]}/${cw_ours[-1]}, bsdtar ${w_bsd[-1]}/${cw_bsd[-1]};" \
        "extract ours ${x_ours[-1]}/${cx_ours[-1]}, bsdtar ${x_bsd[-1]}/${cx_bsd[-1]}"
done
cmp -s "$runs_dir/ours-1.tar.gz" "$ours_archive" || { echo "error: our writer is not reproducible" >&2; exit 1; }
rm -rf "$runs_dir"

report() {
    local name=$1 ours=$2 bsd=$3 cours=$4 cbsd=$5
    awk -v n="$name" -v o="$ours" -v b="$bsd" -v co="$cours" -v cb="$cbsd" 'BEGIN {
        r = o / b
        printf "%-8s wall: ours %6.0f ms, bsdtar %6.0f ms, ratio %.3f %s\n", n, o, b, r, (r <= 1.15 ? "(target <= 1.15: ok)" : "(target <= 1.15: MISSED)")
        printf "%-8s cpu:  ours %6.0f ms, bsdtar %6.0f ms, ratio %.3f\n", "", co, cb, co / cb
    }'
}
echo "medians of $runs interleaved runs (gzip level $level; archive sizes: ours $(stat -c %s "$ours_archive") B, bsdtar $(stat -c %s "$bsd_archive") B; load: $(cut -d' ' -f1-3 /proc/loadavg))"
report write "$(median "${w_ours[@]}")" "$(median "${w_bsd[@]}")" "$(median "${cw_ours[@]}")" "$(median "${cw_bsd[@]}")"
report extract "$(median "${x_ours[@]}")" "$(median "${x_bsd[@]}")" "$(median "${cx_ours[@]}")" "$(median "${cx_bsd[@]}")"
