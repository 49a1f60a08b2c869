#!/usr/bin/env bash
# ci/bench hook: the container hook against the bare tools, side by side on the same image.
#   prepare_job            vs  systemd-nspawn -b --volatile=overlay --notify-ready=yes to READY=1
#   run_script_step `true` vs  nsenter -t LEADER -a systemd-run --wait --pipe --quiet true, twice:
#     as root (the hook manages guests in process) and as the runner user (nobody here), as on a
#     host: the step goes through the guest's step relay, started by `ci-nspawn-run start`.
#   prepare_job with one service, until the service (an HTTP server on 8080 in a copy of the image)
#     answers by name from the job guest  vs  two nspawn -b (service tree, job tree) on the bridge
#     to READY=1 (private network only; HOOK_BENCH_SERVICE_RUNS, default 5)
#   cleanup_job median (with and without the service), and the hook's peak RSS (/usr/bin/time -v).
# Guests are user-namespaced (RUNNER_GUEST_USERNS=on, the default; HOOK_BENCH_USERNS=off measures
# without): the bare nspawn gets the same --private-users flags, rootidmap binds and, on a host
# without systemd as PID 1, a cgroup of its own, as the helper gives each guest.
# Guests are on a private network per job (RUNNER_GUEST_NETWORK=private, the default;
# HOOK_BENCH_NETWORK=host measures without): the bare nspawn joins a bridge of the bench's own
# with the same --network-bridge and --resolv-conf=off flags.
# Every row prints the median, p95 and max: a rare stall hides behind a median.
# Needs root, systemd-nspawn, python3 and the test image (built with mmdebstrap when missing).
set -euo pipefail
# shellcheck source=ci/lib.sh
. "$(dirname "$0")/../lib.sh"
: "${RUNNER_BIN:?run through ci/bench (it builds and exports RUNNER_BIN)}"
[ "$(id -u)" -eq 0 ] || { echo "bench hook: needs root" >&2; exit 1; }
# Measure the agent as ci/release ships it (static Swift stdlib): its startup is most of what the
# hook adds to a step, and the static binary starts faster than the dynamic one ci/bench built.
# HOOK_BENCH_AGENT_AS_IS=1 measures the agent in RUNNER_BIN as it is (a quick look with a debug
# build; its slower startup makes every ratio pessimistic).
if [ -z "${HOOK_BENCH_AGENT_AS_IS:-}" ]; then
    echo "relinking runner-agent with --static-swift-stdlib (as ci/release ships it)"
    swift build -c release --static-swift-stdlib --product runner-agent >/dev/null
    swift build -c release --static-swift-stdlib --product runner-hook >/dev/null
fi
agent="$RUNNER_BIN/runner-agent"
# What container-hooks.sh execs for every call: runner-hook (steps to the relay, the rest to the
# agent beside it).
client="$RUNNER_BIN/runner-hook"
runs=${HOOK_BENCH_RUNS:-9}

# The same image the hook tests boot (see Tests/RunnerIntegrationTests/Hooks/CachedTree.swift).
key=$(printf 'bookworm minbase systemd,dbus,bash,coreutils,python3 v1' | sha256sum | cut -c1-16)
base=/var/cache/runner-tests/rootfs-$key
if [ ! -x "$base/usr/lib/systemd/systemd" ]; then
    echo "building the test image into $base (once)"
    mkdir -p /var/cache/runner-tests
    tmp=$base.tmp-$$
    # shellcheck disable=SC2016 # $1 is expanded by mmdebstrap's hook shell, not here
    mmdebstrap --quiet --variant=minbase --include=systemd,dbus,bash,coreutils,python3 \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --customize-hook='rm -f "$1/etc/resolv.conf"' --customize-hook='echo guest > "$1/etc/hostname"' \
        bookworm "$tmp"
    mv "$tmp" "$base"
fi

root=$(mktemp -d /tmp/runner-bench-hook-XXXXXX)
cleanup() { remove_bench_root "$root" "$agent"; }
trap cleanup EXIT
store=$root/var/lib/runner/images/job
digest=$(printf '%s' "$key" | sha256sum | cut -c1-64)
mkdir -p "$store/$digest"
# A copy, not hard links: the first guest start shifts the tree's owners into the guests' range
# in place, which must not touch the shared cached tree.
cp -a "$base" "$store/$digest/rootfs"
ln -s "$digest" "$store/current"
# The service image of the "service by name" row: the same tree with an HTTP server on port 8080
# started at boot (both sides boot it).
svc=$root/var/lib/runner/images/svc
mkdir -p "$svc/$digest"
cp -a "$base" "$svc/$digest/rootfs"
ln -s "$digest" "$svc/current"
printf '[Service]\nExecStart=/usr/bin/python3 -m http.server 8080\n[Install]\nWantedBy=multi-user.target\n' \
    >"$svc/$digest/rootfs/etc/systemd/system/bench-http.service"
mkdir -p "$svc/$digest/rootfs/etc/systemd/system/multi-user.target.wants"
ln -s ../bench-http.service "$svc/$digest/rootfs/etc/systemd/system/multi-user.target.wants/bench-http.service"
work=$root/var/lib/runner/work
mkdir -p "$work/_temp/_runner_file_commands" "$work/_temp/_github_home" "$work/_temp/_github_workflow" \
    "$work/_tool" "$work/_actions" "$work/repo/repo" "$root/opt/actions-runner/externals"
# The runner user owns its work directory and what is in it (binds are idmapped to that owner).
chown -R 65534:65534 "$work"
userns=${HOOK_BENCH_USERNS:-on}
mkdir -p "$root/etc/runner"
network=${HOOK_BENCH_NETWORK:-private}
printf 'RUNNER_GUEST_USERNS=%s\nRUNNER_GUEST_NETWORK=%s\n' "$userns" "$network" >"$root/etc/runner/config.env"
# The unprivileged hook runs a copy of the client and agent it can reach (the build tree may be
# under /root).
chmod 755 "$root"
mkdir -p "$root/bin"
cp "$agent" "$root/bin/runner-agent"
cp "$client" "$root/bin/runner-hook"

python3 - "$agent" "$root" "$store/current/rootfs" "$runs" "$userns" "$network" "$svc/current/rootfs" "$client" <<'PY'
import atexit, json, os, signal, socket, statistics, subprocess, sys, time, uuid

agent, root, rootfs, runs, userns = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "on"
private = sys.argv[6] == "private"
service_rootfs = sys.argv[7]
client = sys.argv[8]
# The bare nspawn's bridge (the hook makes its own per job, with an address, nft tables and the
# guest's address and route; the bare boot only joins a bridge).
bridge = "rnbench%d" % (os.getpid() % 100000)
if private:
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    atexit.register(lambda: subprocess.run(["ip", "link", "delete", bridge], stderr=subprocess.DEVNULL))
BASE, SIZE = 2147352576, 65536
# Without systemd as PID 1 a user-namespaced guest needs a cgroup of its own (see GuestCgroups).
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

def hook(payload, rss=False):
    line = json.dumps(payload, separators=(",", ":")) + "\n"
    cmd = ["/usr/bin/time", "-f", "%M", client] if rss else [client]
    t0 = time.monotonic()
    p = subprocess.run(cmd, input=line.encode(), env=env, cwd=work + "/repo/repo",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("hook failed: %s %s" % (p.stdout.decode()[-2000:], p.stderr.decode()[-2000:]))
    kb = int(p.stderr.decode().strip().splitlines()[-1]) if rss else 0
    return dt, kb

def prepare():
    resp = "%s/_temp/_runner_hook_responses/%s.json" % (work, uuid.uuid4())
    os.makedirs(os.path.dirname(resp), exist_ok=True)
    open(resp, "w").close()
    payload = {"command": "prepare_job", "responseFile": resp, "state": None, "args": {"services": [],
               "container": {"image": "job", "dockerfile": None, "entryPointArgs": [], "entryPoint": None,
                             "workingDirectory": "/__w/repo/repo", "createOptions": None, "registry": None,
                             "environmentVariables": {"HOME": "/github/home"}, "portMappings": [],
                             "systemMountVolumes": mounts(), "userMountVolumes": []}}}
    dt, kb = hook(payload, rss=True)
    rss.append(kb)
    state = json.load(open(resp))["state"]
    os.unlink(resp)
    return dt, state

def step(state, rss=False):
    return hook({"command": "run_script_step", "responseFile": work + "/_temp/x.json", "state": state,
                 "args": {"entryPoint": "true", "entryPointArgs": [], "environmentVariables": {},
                          "prependPath": [], "workingDirectory": "/__w/repo/repo"}}, rss)

def relay_guest():
    out = subprocess.run([agent, "guest", "start", "--image", "job", "--bind", work + ":/__w", "--relay-uid", "65534"],
                         env=env, check=True, capture_output=True).stdout
    return json.loads(out)["name"]

def relay_step(guest):
    payload = {"command": "run_script_step", "responseFile": None,
               "state": {"guest": guest, "services": [], "environment": {},
                         "relay": root + "/run/runner/relay/" + guest + ".sock"},
               "args": {"entryPoint": "true", "entryPointArgs": [], "environmentVariables": {}, "prependPath": [],
                        "workingDirectory": "/__w/repo/repo"}}
    t0 = time.monotonic()
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", root + "/bin/runner-hook"],
                       input=(json.dumps(payload) + "\n").encode(), env=env, cwd="/", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("relayed step failed: %s %s" % (p.stdout.decode()[-2000:], p.stderr.decode()[-2000:]))
    return dt

def cleanup(state):
    return hook({"command": "cleanup_job", "responseFile": work + "/_temp/y.json", "args": {}, "state": state})[0]

def bare_cgroup(machine):
    """The cgroups the bare nspawn starts in (none needed on a systemd host or without userns)."""
    if not userns or systemd_pid1:
        return []
    made = []
    for h in hierarchies:
        d = "%s/runner-bench/%s" % (h, machine)
        os.makedirs(d, exist_ok=True)
        made.append(d)
    return made

def remove_cgroup(dirs):
    for d in dirs:
        for sub, _, _ in sorted(os.walk(d), key=lambda w: -w[0].count("/")):
            for _ in range(200):
                try:
                    os.rmdir(sub)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)

def prepare_with_service():
    """prepare_job for a job container and one service (`redis`), until the service answers
    by name from the job guest (a TCP connection to redis:8080, made in the job guest)."""
    resp = "%s/_temp/_runner_hook_responses/%s.json" % (work, uuid.uuid4())
    os.makedirs(os.path.dirname(resp), exist_ok=True)
    open(resp, "w").close()
    service = {"contextName": "redis", "image": "svc", "dockerfile": None, "entryPointArgs": [], "entryPoint": None,
               "workingDirectory": None, "createOptions": None, "registry": None, "environmentVariables": {},
               "portMappings": [], "systemMountVolumes": [], "userMountVolumes": []}
    payload = {"command": "prepare_job", "responseFile": resp, "state": None, "args": {"services": [service],
               "container": {"image": "job", "dockerfile": None, "entryPointArgs": [], "entryPoint": None,
                             "workingDirectory": "/__w/repo/repo", "createOptions": None, "registry": None,
                             "environmentVariables": {"HOME": "/github/home"}, "portMappings": [],
                             "systemMountVolumes": mounts(), "userMountVolumes": []}}}
    t0 = time.monotonic()
    hook(payload)
    state = json.load(open(resp))["state"]
    os.unlink(resp)
    leader = json.load(open(root + "/run/runner/guests/" + state["guest"] + ".json"))["leaderPID"]
    probe = ["nsenter", "-t", str(leader), "-a", "bash", "-c", "exec 3<>/dev/tcp/redis/8080"]
    while subprocess.run(probe, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        if time.monotonic() - t0 > 60:
            sys.exit("the service never answered by name from the job guest")
        time.sleep(0.005)
    return time.monotonic() - t0, state

def bare_boot(tree=None):
    path = "%s/bare-%s.notify" % (root, uuid.uuid4().hex[:8])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(30)
    machine = "bench-" + uuid.uuid4().hex[:8]
    cgroups = bare_cgroup(machine)
    users = ["--private-users=%d:%d" % (BASE, SIZE), "--private-users-ownership=off"] if userns else []
    idmap = ":rootidmap" if userns else ""
    def enter():
        for d in cgroups:
            with open(d + "/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
    t0 = time.monotonic()
    p = subprocess.Popen(["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "-D", tree or rootfs,
                          "--machine=" + machine, "-b", "--volatile=overlay",
                          "--notify-ready=yes", "--console=passive"] + users +
                         (["--network-bridge=" + bridge, "--resolv-conf=off"] if private else []) +
                         [("--bind-ro=" if m["readOnly"] else "--bind=") + m["sourceVolumePath"] + ":" +
                          m["targetVolumePath"] + idmap for m in mounts()],
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
    subprocess.run(["nsenter", "-t", str(leader), "-a", "systemd-run", "--wait", "--pipe", "--quiet", "true"],
                   check=True, stdin=subprocess.DEVNULL)
    return time.monotonic() - t0

# Steps alternate with the bare command on the same guest: a step's own cost in the guest
# (systemd-run, D-Bus) varies by tens of milliseconds from run to run, so only pairs compare.
steps = int(os.environ.get("HOOK_BENCH_STEPS", "6"))
boot_bare, boot_hook, clean, step_bare, step_hook, rss = [], [], [], [], [], []
step_relay, step_bare_relay = [], []
clean_service = []
# One job first: its guest start shifts the image into the guests' range (once per image), which
# the bare nspawn then boots as well.
_, state = prepare()
cleanup(state)
for i in range(runs):
    dt, p, leader = bare_boot()
    boot_bare.append(dt)
    bare_stop(p)
    dt, state = prepare()
    boot_hook.append(dt)
    leader = json.load(open(root + "/run/runner/guests/" + state["guest"] + ".json"))["leaderPID"]
    for _ in range(steps):
        step_bare.append(bare_step(leader))
        step_hook.append(step(state)[0])
    rss.append(step(state, rss=True)[1])
    clean.append(cleanup(state))
    guest = relay_guest()
    leader = json.load(open(root + "/run/runner/guests/" + guest + ".json"))["leaderPID"]
    for _ in range(steps):
        step_bare_relay.append(bare_step(leader))
        step_relay.append(relay_step(guest))
    subprocess.run([agent, "guest", "stop", guest], env=env, check=True)

# A job with one service, reached by name from the job guest (private network only), against
# two bare nspawns booted one after the other (the service's tree, then the job's) on the same
# bridge to READY=1.
service_hook, service_bare = [], []
if private:
    _, state = prepare_with_service()
    cleanup(state)
    for i in range(int(os.environ.get("HOOK_BENCH_SERVICE_RUNS", "5"))):
        t0 = time.monotonic()
        _, p1, _ = bare_boot(service_rootfs)
        _, p2, _ = bare_boot()
        service_bare.append(time.monotonic() - t0)
        bare_stop(p1)
        bare_stop(p2)
        dt, state = prepare_with_service()
        service_hook.append(dt)
        clean_service.append(cleanup(state))

# Workspace ownership: a step creates 20,000 entries in the workspace; on the host they must
# belong to the work directory's owner (rootidmap with user namespaces; the after-step walk
# without), and the next step pays what handing them over costs.
dt, state = prepare()
tree = work + "/repo/repo/tree"
make = "import os\nfor d in range(200):\n    os.makedirs('tree/d%03d' % d)\n    [open('tree/d%03d/f%02d' % (d, f), 'w').close() for f in range(99)]\n"
hook({"command": "run_script_step", "responseFile": work + "/_temp/x.json", "state": state,
              "args": {"entryPoint": "python3", "entryPointArgs": ["-c", make], "environmentVariables": {},
                       "prependPath": [], "workingDirectory": "/__w/repo/repo"}})[0]
walk = [step(state)[0] for _ in range(9)]
cleanup(state)
owner_ok = all(os.lstat(os.path.join(tree, "d000", n)).st_uid == os.stat(work).st_uid for n in os.listdir(tree + "/d000"))

med = statistics.median
def p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
def spread(values):
    return "p95 %6.1f max %6.1f" % (p95(values) * 1000, max(values) * 1000)
def row(name, ours, bare, target):
    ratio = med(ours) / med(bare)
    ok = "ok" if ratio <= target else "OVER"
    print("%-34s hook %7.1f ms (%s)   bare %7.1f ms (%s)   ratio %.2f (target <= %.1f) %s"
          % (name, med(ours) * 1000, spread(ours), med(bare) * 1000, spread(bare), ratio, target, ok))
print("runs: %d boots, %d steps each side; user namespaces %s; network %s"
      % (runs, len(step_hook), "on" if userns else "off", "private" if private else "host"))
row("prepare_job vs nspawn -b to READY", boot_hook, boot_bare, 1.3)
if service_hook:
    row("with a service, answering by name", service_hook, service_bare, 1.3)
row("run_script_step true vs nsenter", step_hook, step_bare, 1.5)
row("  the same as the runner user (relay)", step_relay, step_bare_relay, 1.5)
c = med(clean)
print("%-34s %7.1f ms (%s) (target <= 300 ms) %s"
      % ("cleanup_job median", c * 1000, spread(clean), "ok" if c <= 0.3 else "OVER"))
if clean_service:
    print("%-34s %7.1f ms (%s)" % ("cleanup_job with a service", med(clean_service) * 1000, spread(clean_service)))
print("%-34s %+7.1f ms per step with 20,000 step-made entries (owned by the work owner: %s)"
      % ("workspace ownership", (med(walk) - med(step_hook)) * 1000, owner_ok))
over = [t for t in step_hook + step_relay if t > 1.0]
print("%-34s %d of %d over 1 s" % ("step stalls", len(over), len(step_hook) + len(step_relay)))
r = max(rss) / 1024
print("%-34s %7.1f MB (target <= 30 MB) %s" % ("hook peak RSS (prepare, step)", r, "ok" if r <= 30 else "OVER"))
PY
