#!/usr/bin/env bash
# ci/bench helper: the privileged helper calls the runner user's prepare_job makes before its
# guests start, for a job with one registry image, side by side in one run:
#   one call:   sudo -n runner-agent guest settings --lookup-stdin   (the settings and the store's
#               answer for the image, what the hook does now)
#   two calls:  sudo -n runner-agent guest settings, then sudo -n runner-agent guest pull
#               --store-only                                        (what it did before)
# Both through sudo, as the hook calls them (under sudo the helper reads the host's own config and
# image store; nothing is pinned: the requests name no owner). Interleaved; median, p95 and max.
# Needs root, sudo and RUNNER_BIN (ci/bench sets it). Tunable: BENCH_RUNS (default 40).
set -euo pipefail

bin="${RUNNER_BIN:?set RUNNER_BIN to the directory holding runner-agent}"
runs="${BENCH_RUNS:-40}"
[ "$(id -u)" = 0 ] || { echo "error: ci/bench helper needs root (sudo -n as the hook's helper)" >&2; exit 1; }
command -v sudo >/dev/null || { echo "error: sudo is missing (ci/packages.txt)" >&2; exit 1; }
[ -x "$bin/runner-agent" ] || { echo "error: $bin/runner-agent is missing: build with swift build -c release" >&2; exit 1; }

python3 - "$bin/runner-agent" "$runs" <<'PY'
import json, statistics, subprocess, sys, time

agent, runs = sys.argv[1], int(sys.argv[2])
reference = "docker.io/library/node:20"

def call(arguments, request=None):
    t0 = time.monotonic()
    p = subprocess.run(["sudo", "-n", "--", agent, "guest"] + arguments,
                       input=json.dumps(request).encode() if request else None,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("bench helper: %s failed: %s" % (" ".join(arguments), p.stderr.decode()[-2000:]))
    return dt

def one():
    return call(["settings", "--lookup-stdin"], {"references": [reference]})

def two():
    return call(["settings"]) + call(["pull", "--store-only"], {"reference": reference})

ones, twos = [], []
for i in range(runs):
    for f, values in ((one, ones), (two, twos)) if i % 2 == 0 else ((two, twos), (one, ones)):
        values.append(f())

def p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]

for name, values in (("settings --lookup-stdin (1 call)", ones), ("settings + pull --store-only (2)", twos)):
    print("%-34s median %6.1f ms  p95 %6.1f  max %6.1f" % (
        name, statistics.median(values) * 1000, p95(values) * 1000, max(values) * 1000))
saved = [b - a for a, b in zip(ones, twos)]
print("ratio one/two %.2f (median); paired saving %.1f ms (median) per image of a job" % (
    statistics.median(ones) / statistics.median(twos), statistics.median(saved) * 1000))
PY
