#!/usr/bin/env bash
# ci/bench rootfs: our bake vs bare mmdebstrap of the same package set straight to a tar, and
# our image's boot to READY vs the bare mmdebstrap tree booted the same way, side by side.
#   RUNNER_BIN   the release build directory (ci/bench sets it)
#   BENCH_BAKES  runs per bake command (default 3); BENCH_BOOTS boots per tree (default 15)
# Needs root (mmdebstrap --mode=root, systemd-nspawn) and the network (deb.debian.org).
set -euo pipefail
: "${RUNNER_BIN:?set RUNNER_BIN to the release build directory (ci/bench does)}"
bakes="${BENCH_BAKES:-3}"
boots="${BENCH_BOOTS:-15}"
recipe=images/debian-bookworm
[ "$(id -u)" -eq 0 ] || { echo "error: ci/bench rootfs needs root (mmdebstrap --mode=root, nspawn)" >&2; exit 1; }
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1747699200}"

work=$(mktemp -d /var/tmp/runner-bench-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The recipe's package set, suite and mirror, so bare mmdebstrap builds the same thing.
conf() { sed -n "s/^$1[[:space:]]*=[[:space:]]*//p" "$recipe/recipe.conf"; }
packages=$(conf packages | tr -s ', ' '\n' | sed '/^$/d' | paste -sd, -)
suite=$(conf suite)
mirror=$(conf mirror)

echo "== bake: runner-build rootfs vs bare mmdebstrap → tar ($bakes runs each; packages: $packages)"
hyperfine --runs "$bakes" --style basic --export-json "$work/bake.json" \
    -n ours "$RUNNER_BIN/runner-build rootfs $recipe --version bench --out $work/ours --force" \
    -n bare "mmdebstrap --quiet --mode=root --variant=minbase --include=$packages --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr $suite $work/bare.tar $mirror"

echo "== boot to READY: our image (imported) vs the bare mmdebstrap tree, --volatile=overlay ($boots boots each, interleaved)"
"$RUNNER_BIN/runner-agent" image import "$work/ours/rootfs-debian-bookworm-bench.tar.zst" --name debian-bookworm \
    --manifest "$work/ours/rootfs-debian-bookworm-bench.manifest.json" --root "$work/store" >/dev/null
ours_tree="$work/store/var/lib/runner/images/debian-bookworm/current/rootfs"
bare_tree="$work/bare-tree"
mkdir "$bare_tree"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$work/bare.tar" -C "$bare_tree"

/usr/bin/python3 - "$boots" "$ours_tree" "$bare_tree" "$work/bake.json" <<'PY'
import json, os, socket, statistics, subprocess, sys, tempfile, time

boots, ours, bare, bake_json = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def boot(tree):
    """Seconds from spawning systemd-nspawn to READY=1 from the guest's systemd, and the state."""
    path = tempfile.mktemp(prefix="runner-bench-notify-", dir="/run")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    start = time.monotonic()
    proc = subprocess.Popen(
        ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "-D", tree, "--volatile=overlay", "-b",
         "--notify-ready=yes", "--console=passive"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready, leader = None, None
    try:
        while ready is None:
            msg = sock.recv(4096).decode()
            for line in msg.splitlines():
                if line.startswith("X_NSPAWN_LEADER_PID="):
                    leader = line.split("=", 1)[1]
                if line == "READY=1":
                    ready = time.monotonic() - start
        state = subprocess.run(["nsenter", "-t", leader, "-a", "systemctl", "is-system-running", "--wait"],
                               capture_output=True, text=True).stdout.strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        sock.close()
        os.unlink(path)
    return ready, state

times = {"ours": [], "bare": []}
states = {"ours": set(), "bare": set()}
boot(ours); boot(bare)  # warm the page cache for both
for _ in range(boots):
    for name, tree in (("ours", ours), ("bare", bare)):
        t, s = boot(tree)
        times[name].append(t)
        states[name].add(s)

bake = {r["command"]: r for r in json.load(open(bake_json))["results"]}
bo, bb = bake["ours"]["median"], bake["bare"]["median"]
ro, rb = statistics.median(times["ours"]), statistics.median(times["bare"])
print()
print(f"{'':28} {'ours':>9} {'bare':>9} {'ratio':>7}  target")
print(f"{'bake median (s)':28} {bo:9.2f} {bb:9.2f} {bo / bb:7.2f}  <= 1.15")
print(f"{'boot to READY median (s)':28} {ro:9.3f} {rb:9.3f} {ro / rb:7.2f}  <= 1.00, ours <= 0.300 s")
print(f"{'boot min/max (s)':28} {min(times['ours']):.3f}/{max(times['ours']):.3f} {min(times['bare']):.3f}/{max(times['bare']):.3f}")
print(f"{'system state after boot':28} ours={','.join(sorted(states['ours']))} bare={','.join(sorted(states['bare']))}")
PY
stat -c "size %s %n" "$work/ours"/*.tar.zst "$work/bare.tar"
