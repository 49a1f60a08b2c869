import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

extension GuestSuites {
    /// Issue #10, routes 4, 5 and 10, attacked from a real guest: a guest binary run with host
    /// privileges, the relay connecting to a socket the guest chooses, and the relay's internals
    /// reached through sudo; plus the sandbox of the units we start (no mount, docker's
    /// capabilities) and the step stalls of issue #12.
    @Suite(
        .serialized,
        .guestsAndSetpriv)
    struct RelayRedTeamTests {
        static let user = HookHarness.ownerUID

        /// A run_script_step for the hook, as the runner sends it.
        func step(_ script: String, guest: String) -> String {
            """
            {"command":"run_script_step","responseFile":null,"args":{"entryPoint":"bash",\
            "entryPointArgs":["-c",\(TestJSON.quote(script))],"environmentVariables":{},\
            "prependPath":[],"workingDirectory":"/__w/octo-repo/octo-repo"},\
            "state":{"guest":"\(guest)","services":[],"environment":{}}}
            """
        }

        /// Starts a guest with the work tree at `/__w` and a relay for the test user.
        func startGuest(_ h: HookHarness) async throws -> String {
            let started = await h.runAgent(
                ["guest", "start", "--image", "job", "--bind", h.work + ":/__w", "--relay-uid", "\(Self.user)"])
            #expect(started.status == .exited(0), "\(started.stderr)")
            return try #require(started.text.firstMatch(of: /"name":"(rg-[0-9a-f]+)"/)?.1).description
        }

        func manager(_ h: HookHarness) -> GuestManager {
            GuestManager(policy: GuestPolicy(layout: h.layout), logger: Logger(label: "red-team"))
        }

        /// Route 4: a step replaces the guest's systemd-run, systemctl and env with scripts that
        /// leave a canary when they run with host privileges (a bounding set with
        /// CAP_SYS_MODULE, which no guest has) or in the host's mount namespace (the test's temp
        /// directory through /proc/1/root). Later steps, `ci-nspawn-run exec` and a health probe
        /// never run them on the host, and still work.
        @Test func guestBinariesNeverRunOnTheHost() async throws {
            try await HookHarness.with { h in
                let name = try await startGuest(h)
                let canary = h.dir.appending("canary")
                let privileged = h.work + "/octo-repo/host-privileged"
                let trap = """
                    cap=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
                    if [ $(( 0x$cap >> 16 & 1 )) = 1 ]; then echo "$0 $cap" >> /__w/octo-repo/host-privileged; fi
                    echo pwned > /proc/1/root\(canary) 2>/dev/null

                    """
                try AtomicFile.write(trap, to: h.work + "/trap.sh")
                let script = """
                    set -e
                    for b in /usr/bin/systemd-run /usr/bin/systemctl /usr/bin/env; do
                        mv $b $b.orig
                        { echo '#!/bin/bash'; cat /__w/trap.sh; echo "exec $b.orig \\"\\$@\\""; } > $b
                        chmod 755 $b
                    done
                    head -c 2 /usr/bin/env; echo
                    """
                let replaced = try await h.hook(step(script, guest: name), asUser: Self.user)
                #expect(replaced.status == .exited(0), "\(replaced.text)\(replaced.stderr)")
                #expect(replaced.text == "#!\n")

                // A step with a bare program name goes through the guest's env(1), in its unit.
                let bare = try await h.hook(step("python3 -c 'print(6*7)'", guest: name), asUser: Self.user)
                #expect(bare.status == .exited(0) && bare.text == "42\n", "\(bare.text)\(bare.stderr)")
                let exec = await h.runAgent(["guest", "exec", name, "--env", "X=1", "--", "env"])
                #expect(exec.status == .exited(0), "\(exec.stderr)")
                #expect(exec.text.contains("X=1"))
                let probe = try await manager(h).probe(name, command: ["/bin/sh", "-c", "echo ok"], timeout: 10)
                #expect(probe.status == .exited(0) && probe.standardOutput == "ok\n", "\(probe)")
                let helper = await h.runAgent(["exec", name, "--timeout", "10", "--", "true"], asHelper: true)
                #expect(helper.status == .exited(0), "\(helper.stderr)")

                #expect(!FilePaths.exists(canary), "a guest binary ran in the host's mount namespace")
                let evidence = String(decoding: (try? FilePaths.read(privileged)) ?? [], as: UTF8.self)
                #expect(!FilePaths.exists(privileged), "a guest binary ran with host privileges: \(evidence)")
                #expect(await h.runAgent(["guest", "stop", name]).status == .exited(0))
            }
        }

        /// Route 5: the guest points its systemd socket at a Unix socket the test listens on on
        /// the host, then makes its systemd re-execute (which drops every bus connection, so the
        /// relay connects anew): no connection ever reaches the host's socket; fresh connections
        /// (`exec`, a probe) fail clearly or reach the guest's own systemd.
        @Test func theBusSocketIsResolvedInsideTheGuest() async throws {
            try await HookHarness.with { h in
                let name = try await startGuest(h)
                let hostSocket = h.dir.appending("host.sock")
                let listener = try UnixSocket.listen(path: hostSocket, owner: 0, group: 0)
                defer { close(listener) }
                _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK)
                // The relay's connection is made at its first step.
                let first = try await h.hook(step("true", guest: name), asUser: Self.user)
                #expect(first.status == .exited(0), "\(first.stderr)")
                let swap = try await h.hook(
                    step(
                        "mv /run/systemd/private /run/systemd/private.real && ln -s \(hostSocket) /run/systemd/private",
                        guest: name), asUser: Self.user)
                #expect(swap.status == .exited(0), "\(swap.stderr)")
                // The relay's connection still works.
                let again = try await h.hook(step("echo still", guest: name), asUser: Self.user)
                #expect(again.status == .exited(0) && again.text == "still\n", "\(again.stderr)")
                // SIGTERM makes the guest's systemd re-execute: its connections close.
                _ = try await h.hook(step("kill -TERM 1; sleep 5", guest: name), asUser: Self.user)
                await MonotonicClock.pause(seconds: 1)
                let after = try await h.hook(step("echo after", guest: name), asUser: Self.user)
                if after.status != .exited(0) {
                    #expect(after.stderr.contains("could not connect to the guest's systemd"), "\(after.stderr)")
                }
                let exec = await h.runAgent(["guest", "exec", name, "--", "true"])
                if exec.status != .exited(0) {
                    #expect(exec.stderr.contains("could not connect to the guest's systemd"), "\(exec.stderr)")
                }
                _ = try? await manager(h).probe(name, command: ["true"], timeout: 5)
                let accepted = accept(listener, nil, nil)
                if accepted >= 0 { close(accepted) }
                #expect(accepted < 0, "the host's socket got a connection")
                #expect(await h.runAgent(["guest", "stop", name]).status == .exited(0))
            }
        }

        /// Route 5, the peer check: a socket of the guest's own (a step's listener) at systemd's
        /// path is connected inside the guest, but it is not served by the guest's PID 1: it is
        /// refused before a byte is written to it.
        @Test func aSocketNotServedByTheGuestsInitGetsNothing() async throws {
            try await HookHarness.with { h in
                let name = try await startGuest(h)
                let first = try await h.hook(step("true", guest: name), asUser: Self.user)
                #expect(first.status == .exited(0), "\(first.stderr)")
                let listen = """
                    mv /run/systemd/private /run/systemd/private.real; python3 - <<'PY'
                    import os, socket
                    s = socket.socket(socket.AF_UNIX); s.bind('/run/systemd/private'); s.listen(4)
                    print('ready', flush=True)
                    s.settimeout(20)
                    c, _ = s.accept(); c.settimeout(2)
                    try:
                        data = c.recv(100)
                    except OSError:
                        data = b''
                    open('/__w/octo-repo/fake-got', 'w').write(str(len(data)))
                    PY
                    """
                let (hook, stdout, _) = try await h.spawnHook(step(listen, guest: name), asUser: Self.user)
                let end = MonotonicClock.now() + 20
                while MonotonicClock.now() < end, (try? FilePaths.read(stdout))?.isEmpty ?? true {
                    await MonotonicClock.pause(seconds: 0.05)
                }
                let impostor = await h.runAgent(["guest", "exec", name, "--", "true"])
                #expect(impostor.status != .exited(0))
                #expect(impostor.stderr.contains("not by the guest's init"), "\(impostor.stderr)")
                #expect(await hook.wait() == .exited(0))
                let got = String(decoding: (try? FilePaths.read(h.work + "/octo-repo/fake-got")) ?? [], as: UTF8.self)
                #expect(got == "0", "the guest's own listener received \(got) bytes")
                #expect(await h.runAgent(["guest", "stop", name]).status == .exited(0))
            }
        }

        /// Route 10: no `bus-connect` anywhere; the relay is not a `ci-nspawn-run` command, and
        /// refuses a caller that came through sudo.
        @Test func theRelayIsNotReachableThroughSudo() async throws {
            try await HookHarness.with { h in
                for arguments in [
                    ["bus-connect", "rg-0123456789ab"], ["relay", "rg-0123456789ab", "--uid", "0"],
                ] {
                    let helper = await h.runAgent(arguments, asHelper: true)
                    #expect(helper.status != .exited(0))
                    let text = helper.stderr.lowercased()
                    #expect(text.contains("unexpected argument") || text.contains("unknown option"), "\(text)")
                }
                let old = await h.runAgent(["guest", "bus-connect", "rg-0123456789ab"])
                #expect(old.status != .exited(0))
                let name = try await startGuest(h)
                var environment = h.environment
                environment["SUDO_UID"] = "\(Self.user)"
                environment["SUDO_COMMAND"] = "/usr/local/bin/ci-nspawn-run relay"
                let relayed = await h.runAgent(["relay", name, "--uid", "\(Self.user)"], environment: environment)
                #expect(relayed.status != .exited(0))
                #expect(relayed.stderr.contains("cannot be run through sudo"), "\(relayed.stderr)")
                // The relay `start` launched carries no sudo variable either.
                let relay = try #require(
                    ProcessTable.allPIDs().first {
                        Array(ProcessTable.commandLine(of: $0).dropFirst().prefix(2)) == ["relay", name]
                    })
                let environ = try FilePaths.read("/proc/\(relay)/environ").split(separator: 0)
                #expect(!environ.contains { $0.starts(with: Array("SUDO_".utf8)) })
                #expect(await h.runAgent(["guest", "stop", name]).status == .exited(0))
            }
        }

        /// The units we start: docker's bounding set, no mount, no new namespaces; ordinary work
        /// still runs. An allowed `--cap-add` reaches the bounding set; another is refused.
        @Test func stepsRunInADockerLikeSandbox() async throws {
            try await HookHarness.with { h in
                let name = try await startGuest(h)
                // Docker's set, within what the guest itself holds (in a user namespace sharing the
                // host's network nspawn drops NET_BIND_SERVICE: such a guest cannot bind the host's
                // privileged ports anyway; on its job's own network it keeps it).
                let status = try await h.hook(
                    step("grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status; grep ^CapBnd /proc/1/status", guest: name),
                    asUser: Self.user)
                let fields = status.text.split(separator: "\n").map {
                    $0.split(separator: "\t").last.map(String.init) ?? ""
                }
                #expect(fields.count == 3, "\(status.text)\(status.stderr)")
                let guestBound = UInt64(fields.last ?? "", radix: 16) ?? 0
                let docker: UInt64 = 0xa804_25fb
                #expect(UInt64(fields.first ?? "", radix: 16) == docker & guestBound, "\(status.text)")
                #expect(fields.dropFirst().first == "0", "no NoNewPrivs: \(status.text)")
                let mount = try await h.hook(step("mount -t tmpfs x /mnt", guest: name), asUser: Self.user)
                #expect(mount.status != .exited(0))
                #expect(mount.stderr.contains("permission denied"), "\(mount.stderr)")
                let unshare = try await h.hook(step("unshare -U true", guest: name), asUser: Self.user)
                #expect(unshare.status != .exited(0))
                // The deny list (x86-64 numbers): each call fails with EPERM; ptrace stays.
                try AtomicFile.write(
                    """
                    import ctypes
                    libc = ctypes.CDLL(None, use_errno=True)
                    denied = {"keyctl": 250, "add_key": 248, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
                              "open_by_handle_at": 304, "swapon": 167, "reboot": 169, "init_module": 175,
                              "settimeofday": 164, "umount2": 166, "pivot_root": 155, "fsopen": 430, "kexec_load": 246,
                              "acct": 163, "iopl": 172, "setns": 308}
                    for name, nr in sorted(denied.items()):
                        r = libc.syscall(nr, 0, 0, 0, 0, 0, 0)
                        print(name, "EPERM" if r < 0 and ctypes.get_errno() == 1 else "allowed")
                    print("ptrace", "allowed" if libc.syscall(101, 0, 0, 0, 0) == 0 else "EPERM")

                    """, to: h.work + "/syscalls.py")
                let calls = try await h.hook(step("python3 /__w/syscalls.py", guest: name), asUser: Self.user)
                let lines = calls.text.split(separator: "\n")
                #expect(lines.count == 18, "\(calls.text)\(calls.stderr)")
                #expect(lines.dropLast().allSatisfy { $0.hasSuffix(" EPERM") }, "\(calls.text)")
                #expect(lines.last == "ptrace allowed")
                let ordinary = try await h.hook(
                    step(
                        """
                        set -e; mkdir -p /tmp/a/b; echo x > /tmp/a/b/f; cp -a /tmp/a /tmp/c; chown -R 1:1 /tmp/c
                        ln -s f /tmp/a/b/l; tar -C /tmp -cf /tmp/t.tar a; rm -rf /tmp/a; tar -C /tmp -xf /tmp/t.tar
                        python3 -c 'import os, subprocess; print(subprocess.check_output(["cat", "/tmp/a/b/l"]).decode().strip())'
                        chroot / true; setpriv --reuid=1 --regid=1 --clear-groups id -u
                        """, guest: name), asUser: Self.user)
                #expect(ordinary.status == .exited(0), "\(ordinary.stderr)")
                #expect(ordinary.text == "x\n1\n", "\(ordinary.text)")
                #expect(await h.runAgent(["guest", "stop", name]).status == .exited(0))

                // --cap-add: what the admin allowed reaches the units; anything else is refused.
                var policy = GuestPolicy(layout: h.layout)
                // SYS_PTRACE: in nspawn's set (a unit cannot get more than its guest has), not in docker's.
                policy.allowedCapabilities = ["CAP_SYS_PTRACE"]
                let manager = GuestManager(policy: policy, logger: Logger(label: "red-team"))
                await #expect(throws: RunnerError.self) {
                    _ = try await manager.start(GuestStartRequest(image: "job", capabilities: ["SYS_ADMIN"]))
                }
                let info = try await manager.start(GuestStartRequest(image: "job", capabilities: ["sys_ptrace"]))
                let probe = try await manager.probe(
                    info.name, command: ["/bin/sh", "-c", "grep ^CapBnd /proc/self/status"], timeout: 10)
                // This guest shares the host's network (a policy without one): its own bounding set.
                let own = try await manager.probe(
                    info.name, command: ["/bin/sh", "-c", "grep ^CapBnd /proc/1/status"], timeout: 10)
                let ownBound =
                    UInt64(own.standardOutput.split(separator: "\t").last?.trimmedWhitespace ?? "", radix: 16) ?? 0
                let withPtrace = (docker | 1 << 19) & ownBound  // CAP_SYS_PTRACE is bit 19
                let hex = String(withPtrace, radix: 16)
                let padded = String(repeating: "0", count: max(0, 16 - hex.count)) + hex
                #expect(probe.standardOutput == "CapBnd:\t" + padded + "\n", "\(probe)")
                // A probe's output: late lines are kept, a flood is cut at the bound.
                let late = try await manager.probe(
                    info.name,
                    command: ["/bin/sh", "-c", "sleep 0.5; echo late >&2; head -c 200000 /dev/zero; exit 4"],
                    timeout: 10)
                #expect(
                    late.status == .exited(4) && late.standardError == "late\n", "\(late.status) \(late.standardError)")
                #expect(late.standardOutput.utf8.count == GuestManager.probeOutputLimit)
                try await manager.stop(info.name)
            }
        }

        /// Issue #12 defect 2: no step waits on the bus. 30 steps in a row through the relay,
        /// each well under a second (a stall was 10 s).
        @Test func thirtyStepsInARowNeverStall() async throws {
            try await HookHarness.with { h in
                let name = try await startGuest(h)
                var slowest = 0.0
                for index in 0..<30 {
                    let started = MonotonicClock.now()
                    let result = try await h.hook(step("echo \(index)", guest: name), asUser: Self.user)
                    slowest = max(slowest, MonotonicClock.now() - started)
                    #expect(result.status == .exited(0) && result.text == "\(index)\n", "\(result.stderr)")
                }
                #expect(slowest < 1, "the slowest step took \(slowest) s")
                #expect(await h.runAgent(["guest", "stop", name]).status == .exited(0))
            }
        }
    }
}
