#!/usr/bin/env bash
# ci/bench oci: registry images without an init (the no-init guest path) against the bare tools.
#   prepare_job on a cached registry image  vs  systemd-nspawn --as-pid2 of the same tree to READY=1
#                                               (nspawn reports it once its first exec is done)
#   run_script_step `true`                  vs  nsenter -t LEADER -a true (the same namespaces)
# Every hook call runs runner-hook, as container-hooks.sh does; each step is also run once through
# `runner-agent hook` for comparison (the path of a call runner-hook does not take itself).
# The image is a busybox-static tree laid out as the content store holds it (images/.oci/trees/
# <hex>/{rootfs,config.json}, owners in the guests' range); `ci-nspawn-run pull` is a stand-in
# that answers with it at once (a cached image: the registry is never asked). Guests are
# user-namespaced as the helper makes them; on a host without systemd as PID 1 the bare nspawn
# gets a cgroup of its own too. Guests are on a private network per job (RUNNER_GUEST_NETWORK=
# private, the default; OCI_BENCH_NETWORK=host measures without): the bare nspawn then joins a
# bridge of the bench's own with the same --network-bridge and --resolv-conf=off flags, as in
# ci/bench hook. Every row prints median, p95 and max.
# Needs root, systemd-nspawn, nsenter, python3 and busybox-static (/usr/bin/busybox).
set -euo pipefail
# shellcheck source=ci/lib.sh
. "$(dirname "$0")/../lib.sh"
: "${RUNNER_BIN:?run through ci/bench (it builds and exports RUNNER_BIN)}"
[ "$(id -u)" -eq 0 ] || { echo "bench oci: needs root" >&2; exit 1; }
[ -x /usr/bin/busybox ] || { echo "bench oci: needs busybox-static" >&2; exit 1; }
agent="$RUNNER_BIN/runner-agent"
# What container-hooks.sh execs for every call: runner-hook (steps straight to the relay, other
# calls to the agent beside it).
client="$RUNNER_BIN/runner-hook"
[ -x "$client" ] || { echo "bench oci: $client is not built (swift build -c release --product runner-hook)" >&2; exit 1; }
runs=${OCI_BENCH_RUNS:-15}
steps=${OCI_BENCH_STEPS:-6}
network=${OCI_BENCH_NETWORK:-private}

root=$(mktemp -d /tmp/runner-bench-oci-XXXXXX)
cleanup() { remove_bench_root "$root" "$agent"; }
trap cleanup EXIT
hex=$(printf 'bench busybox %s' "$root" | sha256sum | cut -c1-64)
tree=$root/var/lib/runner/images/.oci/trees/$hex
r=$tree/rootfs
mkdir -p "$r/bin" "$r/usr/bin" "$r/etc" "$r/root" "$r/tmp" "$r/var" "$r/proc" "$r/sys" "$r/dev" "$r/run"
cp /usr/bin/busybox "$r/bin/busybox"
for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\n' >"$r/etc/group"
printf 'ID=busybox\n' >"$r/etc/os-release"
chmod 1777 "$r/tmp"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}}\n' \
    >"$tree/config.json"
# The store's record of the tree, as the puller writes it: each job marks it used (its last use).
printf '{"references":["registry.test/busybox:1"],"digest":"sha256:%s","indexDigest":null,"platform":"linux/amd64","blobs":[],"size":1000000,"pulled":0,"lastUsed":0}\n' \
    "$hex" >"$tree/image.json"
# Owners into the guests' range, as the puller leaves a tree.
find "$r" -exec chown -h 2147352576:2147352576 {} +
mkdir -p "$root/usr/local/bin"
cat >"$root/usr/local/bin/ci-nspawn-run" <<PULL
#!/bin/sh
[ "\$1" = pull ] || exit 64
cat >/dev/null
echo '{"reference":"registry.test/busybox:1","digest":"sha256:$hex","tree":"$tree"}'
PULL
chmod 755 "$root/usr/local/bin/ci-nspawn-run"
work=$root/var/lib/runner/work
mkdir -p "$work/_temp/_runner_file_commands" "$work/_temp/_github_home" "$work/_temp/_github_workflow" \
    "$work/_tool" "$work/_actions" "$work/repo/repo" "$root/opt/actions-runner/externals" "$root/etc/runner"
printf 'RUNNER_GUEST_NETWORK=%s\n' "$network" >"$root/etc/runner/config.env"

python3 - "$agent" "$root" "$r" "$runs" "$steps" "$network" "$client" <<'PY'
import atexit, json, os, signal, socket, statistics, subprocess, sys, time, uuid

agent, root, rootfs, runs, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
private = sys.argv[6] == "private"
client = sys.argv[7]
# The bare nspawn's bridge (the hook makes its own per job, with an address, nft tables and the
# guest's address and route; the bare nspawn only joins a bridge).
bridge = "rnbench%d" % (os.getpid() % 100000)
if private:
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    atexit.register(lambda: subprocess.run(["ip", "link", "delete", bridge], stderr=subprocess.DEVNULL))
BASE, SIZE = 2147352576, 65536
systemd_pid1 = os.path.isdir("/run/systemd/system")
hierarchies = [h for h in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified") if os.path.isdir(h)]
work = root + "/var/lib/runner/work"
ext = root + "/opt/actions-runner/externals"
env = dict(os.environ, RUNNER_HOST_ROOT=root)

def mounts():
    m = [(work, "/__w", False), (ext, "/__e", True), (work + "/_temp", "/__w/_temp", False),
         (work + "/_actions", "/__w/_actions", False), (work + "/_tool", "/__w/_tool", False),
         (work + "/_temp/_github_home", "/github/home", False),
         (work + "/_temp/_github_workflow", "/github/workflow", False)]
    return [{"userProvidedValue": None, "sourceVolumePath": s, "targetVolumePath": t, "readOnly": r} for s, t, r in m]

def hook(payload, argv=None):
    line = json.dumps(payload, separators=(",", ":")) + "\n"
    t0 = time.monotonic()
    p = subprocess.run(argv or [client], input=line.encode(), env=env, cwd=work + "/repo/repo",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("hook failed: %s %s" % (p.stdout.decode()[-2000:], p.stderr.decode()[-2000:]))
    return dt

def prepare():
    resp = "%s/_temp/_runner_hook_responses/%s.json" % (work, uuid.uuid4())
    os.makedirs(os.path.dirname(resp), exist_ok=True)
    open(resp, "w").close()
    dt = hook({"command": "prepare_job", "responseFile": resp, "state": None, "args": {"services": [],
               "container": {"image": "registry.test/busybox:1", "dockerfile": None, "entryPointArgs": [],
                             "entryPoint": None, "workingDirectory": "/__w/repo/repo", "createOptions": None,
                             "registry": None, "environmentVariables": {"HOME": "/github/home"},
                             "portMappings": [], "systemMountVolumes": mounts(), "userMountVolumes": []}}})
    state = json.load(open(resp))["state"]
    os.unlink(resp)
    return dt, state

def step(state, argv=None):
    return hook({"command": "run_script_step", "responseFile": work + "/_temp/x.json", "state": state,
                 "args": {"entryPoint": "true", "entryPointArgs": [], "environmentVariables": {},
                          "prependPath": [], "workingDirectory": "/__w/repo/repo"}}, argv)

def cleanup(state):
    return hook({"command": "cleanup_job", "responseFile": work + "/_temp/y.json", "args": {}, "state": state})

def bare_cgroup(machine):
    if systemd_pid1:
        return []
    made = []
    for h in hierarchies:
        d = "%s/runner-bench/%s" % (h, machine)
        os.makedirs(d, exist_ok=True)
        made.append(d)
    return made

def remove_cgroup(dirs):
    for d in dirs:
        for _ in range(200):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)

def bare_start():
    path = "%s/bare-%s.notify" % (root, uuid.uuid4().hex[:8])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(30)
    machine = "bench-" + uuid.uuid4().hex[:8]
    cgroups = bare_cgroup(machine)
    def enter():
        for d in cgroups:
            with open(d + "/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
    t0 = time.monotonic()
    p = subprocess.Popen(["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "-D", rootfs,
                          "--machine=" + machine, "--as-pid2", "--volatile=overlay", "--console=read-only",
                          "--private-users=%d:%d" % (BASE, SIZE), "--private-users-ownership=off"] +
                         (["--network-bridge=" + bridge, "--resolv-conf=off"] if private else []) +
                         [("--bind-ro=" if m["readOnly"] else "--bind=") + m["sourceVolumePath"] + ":" +
                          m["targetVolumePath"] + ":rootidmap" for m in mounts()] + ["--", "tail", "-f", "/dev/null"],
                         env=dict(os.environ, NOTIFY_SOCKET=path), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=enter)
    p.cgroups = cgroups
    leader = None
    while True:
        msg = s.recv(4096).decode()
        for l in msg.splitlines():
            if l.startswith("X_NSPAWN_LEADER_PID="):
                leader = int(l.split("=", 1)[1])
        if "READY=1" in msg.splitlines():
            break
    dt = time.monotonic() - t0
    s.close()
    os.unlink(path)
    return dt, p, leader

def bare_stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait()
    remove_cgroup(p.cgroups)

def bare_step(leader):
    t0 = time.monotonic()
    subprocess.run(["nsenter", "-t", str(leader), "-a", "true"], check=True, stdin=subprocess.DEVNULL)
    return time.monotonic() - t0

start_bare, start_hook, step_bare, step_hook, step_agent, clean = [], [], [], [], [], []
_, state = prepare()
cleanup(state)
# Each start begins on a settled host: the kernel tears down a stopped guest's network namespace
# and veth after the stop returns (its cleanup work takes the same network lock a start needs),
# and a start right behind the other side's stop would pay for that side's guest. The runner
# fetches its next job from GitHub between jobs, so real starts never follow a stop this closely.
settle = float(os.environ.get("OCI_BENCH_SETTLE", "0.3"))
for i in range(runs):
    time.sleep(settle)
    dt, p, leader = bare_start()
    start_bare.append(dt)
    for _ in range(steps):
        step_bare.append(bare_step(leader))
    bare_stop(p)
    time.sleep(settle)
    dt, state = prepare()
    start_hook.append(dt)
    for _ in range(steps):
        step_hook.append(step(state))
        # The same step through `runner-agent hook` (the path without runner-hook), for comparison.
        step_agent.append(step(state, [agent, "hook"]))
    clean.append(cleanup(state))

med = statistics.median
def p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
def spread(values):
    return "p95 %6.1f max %6.1f" % (p95(values) * 1000, max(values) * 1000)
def row(name, ours, bare, target):
    ratio = med(ours) / med(bare)
    ok = "ok" if ratio <= target else "OVER"
    print("%-40s hook %7.1f ms (%s)   bare %7.1f ms (%s)   ratio %.2f (target <= %.1f) %s"
          % (name, med(ours) * 1000, spread(ours), med(bare) * 1000, spread(bare), ratio, target, ok))
print("runs: %d starts, %d steps each side (no-init guests, user namespaces on; network %s)"
      % (runs, len(step_hook), "private" if private else "host"))
row("prepare_job (cached registry image)", start_hook, start_bare, 1.3)
row("run_script_step true vs nsenter", step_hook, step_bare, 1.5)
print("%-40s hook %7.1f ms (%s)   ratio %.2f (without runner-hook)"
      % ("  the same via runner-agent hook", med(step_agent) * 1000, spread(step_agent), med(step_agent) / med(step_bare)))
print("%-40s hook %7.1f ms (%s)" % ("cleanup_job", med(clean) * 1000, spread(clean)))
PY
