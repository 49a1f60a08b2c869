import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

extension CachedTree {
    /// A "host" tree (systemd, dbus, systemd-container, sudo): booted, it has systemd as PID 1
    /// and machined, like a real appliance host (nspawn-notes.md §2).
    static let host = CachedTree(
        name: "host",
        packages: [
            "systemd", "dbus", "systemd-container", "bash", "coreutils", "python3", "libarchive13", "sudo", "nftables",
            "iproute2",
        ],
        version: "host v3", hostname: "host",
        // As Debian's installer does: the host's own name resolves (sudo looks it up).
        extraHooks: [
            "printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\thost\\n::1\\tlocalhost ip6-localhost\\n' > \"$1/etc/hosts\""
        ],
        marker: "/usr/lib/systemd/systemd-machined")
}

/// A booted host guest (systemd PID 1, machined, sudo) holding a ``HookHarness``'s tree at the
/// same path, the harness's image store at the production path, and the built agent. Every
/// command into it is bounded; ``shutdown()`` is too (SIGTERM, then SIGKILL of init and nspawn).
final class HostGuest: Sendable {
    let harness: HookHarness
    let nspawn: pid_t
    let leader: pid_t
    let name: String

    /// The guest of the running suite (``HostGuestScope``).
    @TaskLocal static var current: HostGuest?

    /// The machine names of host guests start with this (so a killed run's guest can be found).
    static let namePrefix = "rhost-"
    static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    private init(harness: HookHarness, nspawn: pid_t, leader: pid_t, name: String) {
        self.harness = harness
        self.nspawn = nspawn
        self.leader = leader
        self.name = name
    }

    /// Boots the host guest within 60 s, or stops it and throws with its log.
    static func boot(_ h: HookHarness) async throws -> HostGuest {
        let hostTree = try await CachedTree.host.tree()
        let agent = try #require(HookHarness.agent)
        let agentDirectory = FilePaths.parent(of: agent)
        return try await boot(
            h, tree: hostTree,
            binds: [
                GuestBind(source: h.dir.path, target: h.dir.path),
                GuestBind(source: agentDirectory, target: agentDirectory, readOnly: true),
                // The store at its production path, for the helper run through sudo (layout /).
                GuestBind(source: h.layout.imagesDirectory, target: HostLayout().imagesDirectory, readOnly: true),
            ], privateNetwork: true, log: h.dir.appending("host.log"))
    }

    /// Boots `tree` as a host guest with `binds` (and the toolchain's runtime, read-only, which
    /// the debug agent links) within 60 s, or stops it and throws with its log. `volatile`: under
    /// a throwaway overlay (the tree is never changed); otherwise the guest writes to `tree`
    /// itself, so what it did survives a reboot (booting the same tree again). `untilReady`: wait
    /// for READY=1 (the default target reached); otherwise return once the guest's init runs (a
    /// cloud VM's first boot reaches its target only after the long install units).
    /// `privateNetwork`: a network namespace of its own (`--private-network`), so the job
    /// networks the runner makes in it (the production names: `inet runner`, `rn-<job>`) never
    /// reach the build machine's.
    static func boot(
        _ h: HookHarness, tree: String, binds: [GuestBind], volatile: Bool = true, untilReady: Bool = true,
        privateNetwork: Bool = false, log: String
    ) async throws -> HostGuest {
        await sweepOrphans()
        let name = namePrefix + String(GuestName.generate().dropFirst(3))
        let socket = try RunnerSystem.NotifySocket(path: h.dir.appending("host-\(name).notify"))
        var boot = SystemdNspawn.BootOptions(directory: tree, machine: name)
        boot.binds = binds
        // The debug agent links the toolchain's runtime; a release (static) one needs nothing.
        if FilePaths.exists("/opt/swift/usr/lib/swift/linux") {
            boot.binds.append(GuestBind(source: "/opt/swift", target: "/opt/swift", readOnly: true))
        }
        var command = SystemdNspawn().boot(boot)
        command.arguments.insert("--capability=all", at: 1)
        if privateNetwork { command.arguments.insert("--private-network", at: 1) }
        if !volatile { command.arguments.removeAll { $0 == "--volatile=overlay" } }
        command.environment["NOTIFY_SOCKET"] = socket.path
        let nspawn = try Spawner.spawn(
            command, options: SpawnOptions(standardOutput: .file(log), standardError: .file(log), grouping: .newSession)
        )
        let pid = nspawn.pid
        // The notify socket is read with a blocking poll: on a thread of its own.
        let (ready, leader) = await DedicatedThread.run { () -> (Bool, Int32?) in
            var leader: Int32?
            var ready = false
            let deadline = MonotonicClock.now() + 60
            while !ready, MonotonicClock.now() < deadline, nspawn.poll() == nil {
                for line in socket.receive(timeout: 0.5) ?? [] {
                    if line.hasPrefix("X_NSPAWN_LEADER_PID=") { leader = Int32(line.dropFirst(20)) }
                    if line == "READY=1" { ready = true }
                }
                if !untilReady && leader != nil { ready = true }
            }
            return (ready, leader)
        }
        guard ready, let leader else {
            await GuestManager.terminate(pid: pid, startTime: nil)
            _ = nspawn.poll()
            let text = String(decoding: (try? FilePaths.read(log)) ?? [], as: UTF8.self)
            Issue.record("the host guest did not report READY=1 within 60 s:\n\(text.suffix(2000))")
            throw RunnerError(.timeout, input: tree, problem: "host guest did not boot")
        }
        return HostGuest(harness: h, nspawn: pid, leader: leader, name: name)
    }

    /// The command lines of every process in the guest (seen from outside: the guest has no ps).
    func processes() -> [[String]] {
        var found: [[String]] = []
        var queue = ProcessTable.children(of: leader)
        while !queue.isEmpty {
            let pid = queue.removeFirst()
            var line = ProcessTable.commandLine(of: pid)
            while line.last == "" { line.removeLast() }
            found.append(line)
            queue += ProcessTable.children(of: pid)
        }
        return found
    }

    /// Stops the guest: an orderly halt, SIGKILL of its init and nspawn after 3 s (≤ 6 s).
    func shutdown() async {
        await GuestManager.terminate(pid: nspawn, startTime: nil)
        _ = ChildProcess.reap(nspawn)
    }

    /// An orderly poweroff from inside (`systemctl poweroff`: units stop in order, as on a
    /// reboot of a VM); waits up to `seconds` for nspawn to exit, then ``shutdown()``. Returns
    /// nil when the guest went down by itself, else what still ran at the deadline (its
    /// processes and the units being stopped).
    func poweroff(seconds: Double = 120) async -> String? {
        _ = try? await run(["systemctl", "poweroff", "--no-block"])
        let end = MonotonicClock.now() + seconds
        while MonotonicClock.now() < end {
            if ChildProcess.reap(nspawn) != nil || !ProcessTable.isAlive(nspawn, startTime: nil) { return nil }
            try? await Task.sleep(for: .milliseconds(200))
        }
        // The guest's manager may be past answering (systemd-shutdown): what it says within 10 s.
        let jobs =
            (try? await run(["systemctl", "list-jobs", "--no-pager"], seconds: 10, diagnostic: true))?.standardOutput
            ?? "(systemctl did not answer within 10 s)"
        let left = processes().map { $0.joined(separator: " ") }.joined(separator: "\n")
        await shutdown()
        return "jobs:\n\(jobs)\nprocesses:\n\(left)"
    }

    /// Host guests of killed test runs: their nspawn was orphaned (parent 1).
    static func sweepOrphans() async {
        for pid in ProcessTable.allPIDs()
        where ProcessTable.comm(of: pid) == "systemd-nspawn" && ProcessTable.parent(of: pid) == 1 {
            if ProcessTable.commandLine(of: pid).contains(where: { $0.hasPrefix("--machine=" + namePrefix) }) {
                await GuestManager.terminate(pid: pid, startTime: ProcessTable.startTime(of: pid))
            }
        }
    }

    /// `argv` in the guest (all its namespaces), with a clean environment, as root or as `user`
    /// (`setpriv`, like a service's `User=`).
    func command(_ argv: [String], user: String? = nil, environment: [String: String] = [:]) -> Command {
        var inner = ["/usr/bin/env", "-i", "PATH=" + Self.path, "LANG=C.UTF-8"]
        inner += environment.sorted { $0.key < $1.key }.map { $0.key + "=" + $0.value }
        if let user {
            inner += [
                "HOME=/home/" + user, "/usr/bin/setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--",
            ]
        } else {
            inner += ["HOME=/root"]
        }
        return Nsenter().enter(leader: leader, Command(inner[0], Array(inner.dropFirst()) + argv))
    }

    /// Runs `argv` in the guest; `timeout(1)` ends it after `seconds`, which is an issue of the
    /// test unless `diagnostic` (what is gathered about a guest already known to be stuck).
    func run(
        _ argv: [String], user: String? = nil, environment: [String: String] = [:], input: [UInt8]? = nil,
        seconds: Int = 60, diagnostic: Bool = false
    ) async throws -> CommandResult {
        let bounded = Timeout().bounded(.init(seconds: seconds), command(argv, user: user, environment: environment))
        let result = try await SystemCommandRunner().run(bounded, input: input, output: .captured)
        if !diagnostic && (result.status == .exited(124) || result.status == .exited(137)) {
            Issue.record("`\(argv.joined(separator: " "))` in the host guest did not end within \(seconds) s")
        }
        return result
    }

    /// Runs a shell script in the guest as root and requires it to succeed.
    @discardableResult
    func sh(_ script: String, seconds: Int = 60) async throws -> String {
        let result = try await run(["/bin/sh", "-ec", script], seconds: seconds)
        try #require(result.status == .exited(0), "\(script)\n\(result.standardOutput)\(result.standardError)")
        return result.standardOutput
    }
}

/// Boots one host guest for the whole suite and stops it afterwards, whatever the tests did.
struct HostGuestScope: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard HookHarness.isAvailable else { return try await function() }
        let h = try await HookHarness()
        let host: HostGuest
        do {
            host = try await HostGuest.boot(h)
        } catch {
            await h.finish()
            throw error
        }
        do {
            try await HostGuest.$current.withValue(host) { try await function() }
        } catch {
            await host.shutdown()
            await h.finish()
            throw error
        }
        await host.shutdown()
        await h.finish()
    }
}

extension Trait where Self == HostGuestScope {
    /// One booted host guest for the suite (``HostGuest/current``).
    static var hostGuest: Self { HostGuestScope() }
}

extension GuestSuites {
    /// The production paths of the hook, inside a booted host guest on the build machine:
    /// machined registers the guests and steps run over each guest's own systemd bus; and the privilege
    /// split, the hook run as the runner user reaching `ci-nspawn-run` through the installer's
    /// sudoers rule. Every wait is bounded (commands by `timeout`, the hook by a deadline).
    @Suite(
        .serialized, .hostGuest,
        .enabled(
            if: HookHarness.isAvailable,
            "needs root, systemd-nspawn, mmdebstrap and the built runner-agent and runner-hook")
    )
    struct MachinedPathTests {
        static let user = "runner"

        /// Nothing of ours in the host guest: no unit, machine, state file or nspawn process.
        func leftovers(_ host: HostGuest, stateDirectory: String) async throws -> String {
            try await host.sh(
                """
                systemctl list-units --all --no-legend --plain 'rg-*' | sed 's/^/unit /'
                machinectl list --no-legend | grep '^rg-' | sed 's/^/machine /' || true
                ls -A \(stateDirectory) 2>/dev/null | sed 's/^/file /'
                ls -A /run/runner/relay 2>/dev/null | sed 's/^/relay socket /'
                """)
                + host.processes().filter {
                    $0.first.map { FilePaths.basename($0) } == "systemd-nspawn"
                        || $0.dropFirst().prefix(1) == ["relay"]
                }
                .map { "process " + $0.joined(separator: " ") + "\n" }.joined()
        }

        /// What systemd logged when a guest's unit did not stop by itself ("State 'stop-sigterm'
        /// timed out. Killing."): the hang, ended by SIGKILL after TimeoutStopSec.
        func stopTimeouts(_ host: HostGuest, guest: String) async throws -> String {
            try await host.sh("journalctl --no-pager --quiet -u \(guest).service | grep -i 'timed out' || true")
        }

        @Test func guestLifecycleThroughMachined() async throws {
            let host = try #require(HostGuest.current)
            let h = host.harness
            let agent = try #require(HookHarness.agent)
            let environment = ["RUNNER_HOST_ROOT": h.layout.root]
            // Every guest has a live owner; this root caller's parent is the host guest's PID 1.
            let owner = try await host.sh("pidof -s systemd-journald").trimmedWhitespace
            let started = try await host.run(
                [agent, "guest", "start", "--image", "job", "--bind", h.work + ":/__w", "--owner-pid", owner],
                environment: environment, seconds: 90)
            #expect(started.status == .exited(0), "\(started.standardError)")
            let info = try JSONDecoder().decode(GuestInfo.self, from: Data(started.standardOutput.utf8))
            let record = try #require(
                try? JSONDecoder().decode(
                    GuestRecord.self, from: Data(try FilePaths.read(h.layout.guestRecord(info.name)))))
            #expect(record.backend == .machined)
            #expect(record.userNamespace == .standard, "guests are user-namespaced by default")
            let machines = try await host.run(Machinectl().list().argv, seconds: 30)
            #expect(machines.standardOutput.contains(info.name))
            let unit = try await host.run(["systemctl", "show", "-p", "KillMode", "--value", info.name + ".service"])
            #expect(unit.standardOutput == "mixed\n")
            let exec = try await host.run(
                [
                    agent, "guest", "exec", info.name, "--cwd", "/__w", "--", "sh", "-c",
                    "pwd; cat /proc/self/uid_map; exit 3",
                ],
                environment: environment, seconds: 60)
            #expect(exec.status == .exited(3), "\(exec.standardError)")
            let lines = exec.standardOutput.split(separator: "\n").map {
                $0.split(separator: " ").joined(separator: " ")
            }
            #expect(lines == ["/__w", "0 2147352576 65536"], "\(exec.standardOutput)")
            // The stop that hung (KillMode=control-group re-executed the guest's systemd): now
            // well under systemd's TimeoutStopSec, so it was an orderly halt, not a SIGKILL.
            let before = MonotonicClock.now()
            let stop = try await host.run([agent, "guest", "stop", info.name], environment: environment, seconds: 60)
            let seconds = MonotonicClock.now() - before
            #expect(stop.status == .exited(0), "\(stop.standardError)")
            #expect(seconds < Double(SystemdRun.guestStopTimeoutSeconds) / 2, "stop took \(seconds) s")
            #expect(!FilePaths.exists(h.layout.guestRecord(info.name)))
            #expect(try await stopTimeouts(host, guest: info.name) == "")
            #expect(try await leftovers(host, stateDirectory: h.layout.guestStateDirectory) == "")
        }

        /// The job's limits with machined: its guests' units run in the job's slice, which carries
        /// RUNNER_JOB_* (so a job with services cannot use a multiple of them); a guest's own
        /// `--memory` is on its unit, lowered to the job's. The slice and its runtime drop-ins go
        /// with the job's last guest; gc removes those of a job that has no guest left.
        @Test func aJobsGuestsShareItsSlice() async throws {
            let host = try #require(HostGuest.current)
            let h = host.harness
            let agent = try #require(HookHarness.agent)
            let environment = ["RUNNER_HOST_ROOT": h.layout.root]
            let config = String(decoding: try FilePaths.read(h.layout.configFile), as: UTF8.self)
            try AtomicFile.write(
                config + "RUNNER_JOB_MEMORY_MAX=400M\nRUNNER_JOB_CPUS=1.5\nRUNNER_JOB_TASKS_MAX=300\n",
                to: h.layout.configFile)
            defer { try? AtomicFile.write(config, to: h.layout.configFile) }
            let owner = try #require(Int32(try await host.sh("pidof -s systemd-journald").trimmedWhitespace))
            var names: [String] = []
            for limits in [nil, GuestLimits(memoryMax: 1 << 30)] {
                let request = GuestStartRequest(image: "job", ownerPID: owner, limits: limits)
                let started = try await host.run(
                    [agent, "guest", "start", "--request-stdin"], environment: environment,
                    input: Array(try JSONEncoder().encode(request)), seconds: 90)
                try #require(started.status == .exited(0), "\(started.standardError)")
                names.append(try JSONDecoder().decode(GuestInfo.self, from: Data(started.standardOutput.utf8)).name)
            }
            let manager = GuestManager(policy: GuestPolicy(layout: h.layout), logger: .init(label: "test"))
            let job = try #require(manager.list().first?.limitsJob)
            #expect(manager.list().count == 2 && manager.list().allSatisfy { $0.limitsJob == job })
            let slice = JobSlices.unit(job: job)
            func show(_ unit: String, _ property: String) async throws -> String {
                try await host.sh("systemctl show --property=\(property) --value -- \(unit)").trimmedWhitespace
            }
            for name in names {
                #expect(try await show(name + ".service", "Slice") == slice)
                let cgroup = try await show(name + ".service", "ControlGroup")
                #expect(cgroup.hasPrefix("/runner.slice/runner-job.slice/\(slice)/"), "\(cgroup)")
            }
            // The job's limits on its slice; the guests' own: none, and 1 GiB lowered to 400 MiB.
            #expect(try await show(slice, "ActiveState") == "active")
            #expect(try await show(slice, "MemoryMax") == "\(400 << 20)")
            #expect(try await show(slice, "CPUQuotaPerSecUSec") == "1.500000s")
            #expect(try await show(slice, "TasksMax") == "300")
            #expect(try await show(names[0] + ".service", "MemoryMax") == "infinity")
            #expect(try await show(names[1] + ".service", "MemoryMax") == "\(400 << 20)")
            let dropIns = "/run/systemd/system.control/\(slice).d"
            #expect(try await host.sh("ls \(dropIns)").contains("MemoryMax"))

            // The slice stays while the job has a guest, and goes with its last.
            for (index, name) in names.enumerated() {
                let stop = try await host.run([agent, "guest", "stop", name], environment: environment, seconds: 60)
                #expect(stop.status == .exited(0), "\(stop.standardError)")
                #expect(try await show(slice, "ActiveState") == (index == 0 ? "active" : "inactive"))
            }
            func left(_ path: String) async throws -> String {
                try await host.sh("test -e \(path) && echo \(path) || true")
            }
            #expect(try await left(dropIns) == "")
            for hierarchy in ["", "/systemd", "/unified", "/memory"] {
                #expect(try await left("/sys/fs/cgroup\(hierarchy)/runner.slice/runner-job.slice/\(slice)") == "")
            }

            // A killed job's slice (limits set, its guests gone with their records): gc removes it.
            let killed = JobSlices.unit(job: "0badc0de")
            let set = JobSlices.setLimits(job: "0badc0de", GuestLimits(tasksMax: 10))
            try await host.sh(set.argv.joined(separator: " "))
            try await host.sh("systemctl start \(killed)")
            let gc = try await host.run([agent, "guest", "gc"], environment: environment, seconds: 60)
            #expect(gc.status == .exited(0), "\(gc.standardError)")
            #expect(try await show(killed, "ActiveState") == "inactive")
            #expect(try await left("/run/systemd/system.control/\(killed).d") == "")
            #expect(try await leftovers(host, stateDirectory: h.layout.guestStateDirectory) == "")
        }

        /// Lays the host out as the installer does: the runner user, the agent and runner-hook as
        /// the current release, ci-nspawn-run, container-hooks.sh, the installer's sudoers rule, and a
        /// config.env (0600 root) whose work directory is the harness's.
        func installHost(_ host: HostGuest) async throws -> (uid: UInt32, gid: UInt32) {
            let h = host.harness
            let agent = try #require(HookHarness.agent)
            let client = try #require(HookHarness.hookClient)
            let production = HostLayout()
            let useradd = Useradd().systemUser(.init(name: Self.user, home: "/home/" + Self.user, layout: production))
            let added = try await host.run(useradd.argv)
            try #require(added.status == .exited(0), "\(added.standardError)")
            let files = h.dir.appending("install")
            try FilePaths.createDirectory(files)
            try FilePaths.createDirectory(h.work + "/_temp/_runner_hook_responses")
            try AtomicFile.write(HostFiles.sudoers(user: Self.user), to: files + "/sudoers", mode: 0o440)
            try AtomicFile.write(
                try FilePaths.read(Repo.root + "/images/host/container-hooks.sh"),
                to: files + "/container-hooks.sh", mode: 0o755)
            try AtomicFile.write(
                """
                RUNNER_GITHUB_URL=https://github.com/octo-org/octo-repo
                RUNNER_VERSION=2.336.0
                RUNNER_TARBALL_SHA256=\(String(repeating: "ab", count: 32))
                RUNNER_REGISTRATION_TOKEN=AAAATESTREGISTRATIONTOKEN0000
                RUNNER_WORK_DIR=\(h.work)
                RUNNER_GUEST_MOUNT_ALLOW=\(h.externals)
                RUNNER_IMAGE_ALIASES=ghcr.io/octo-org/ci-image:1.4=job

                """, to: files + "/config.env", mode: 0o600)
            let sudoers = production.sudoersRule
            try await host.sh(
                """
                mkdir -p \(FilePaths.parent(of: Installer.agentInCurrentRelease)) \(FilePaths.parent(of: production.guestHelper))
                ln -sfn \(agent) \(Installer.agentInCurrentRelease)
                ln -sfn \(client) \(FilePaths.parent(of: Installer.agentInCurrentRelease))/runner-hook
                ln -sfn \(Installer.agentInCurrentRelease) \(production.guestHelper)
                install -m 0755 \(files)/container-hooks.sh \(production.containerHooksScript)
                install -d -m 0700 \(production.configDirectory)
                install -m 0600 \(files)/config.env \(production.configFile)
                install -m 0440 \(files)/sudoers \(FilePaths.parent(of: sudoers))/.runner.candidate
                visudo --check --quiet --file \(FilePaths.parent(of: sudoers))/.runner.candidate
                mv \(FilePaths.parent(of: sudoers))/.runner.candidate \(sudoers)
                chmod 0755 \(h.dir.path)
                chown -R \(Self.user): \(h.work)
                """)
            let ids = try await host.sh("id -u \(Self.user); id -g \(Self.user)").split(separator: "\n")
            return (try #require(UInt32(ids.first ?? "")), try #require(UInt32(ids.last ?? "")))
        }

        /// Starts `container-hooks.sh` as the runner starts it (`bash -e`, as the runner user,
        /// JSON on stdin) under a shell that stands in for the runner's worker (its parent).
        func spawnHook(_ host: HostGuest, _ json: String) throws -> (
            process: ChildProcess, stdout: String, stderr: String
        ) {
            let out = host.harness.dir.appending("hook-\(UInt32.random(in: 0...UInt32.max))")
            let script = HostLayout().containerHooksScript
            let worker = ["/bin/sh", "-c", "bash -e \"$0\"; exit $?", script]
            var command = host.command(worker, user: Self.user)
            command.workingDirectory = host.harness.work + "/octo-repo/octo-repo"
            let process = try Spawner.spawn(
                command,
                options: SpawnOptions(
                    standardInput: .bytes(Array((json + "\n").utf8)), standardOutput: .file(out + ".stdout"),
                    standardError: .file(out + ".stderr")))
            return (process, out + ".stdout", out + ".stderr")
        }

        /// Waits up to `seconds` for `process`; a hook still running then is killed and reported.
        func wait(_ process: ChildProcess, seconds: Double) async -> RunnerCore.ExitStatus {
            let deadline = MonotonicClock.now() + seconds
            while MonotonicClock.now() < deadline {
                if let status = process.poll() { return status }
                await MonotonicClock.pause(seconds: 0.02)
            }
            for child in ProcessTable.children(of: process.pid) { kill(child, SIGKILL) }
            process.signal(SIGKILL)
            Issue.record("the hook did not end within \(seconds) s")
            return await process.wait()
        }

        func hook(_ host: HostGuest, _ json: String, responseFile: String? = nil) async throws
            -> HookHarness.Result
        {
            let (process, stdout, stderr) = try spawnHook(host, json)
            let status = await wait(process, seconds: 90)
            return HookHarness.Result(
                status: status, stdout: (try? FilePaths.read(stdout)) ?? [],
                stderr: String(decoding: (try? FilePaths.read(stderr)) ?? [], as: UTF8.self),
                response: responseFile.flatMap { try? FilePaths.read($0) }.map { String(decoding: $0, as: UTF8.self) }
                    ?? "")
        }

        /// The hook's own process (`runner-hook`, or `runner-agent hook`, the script exec'd into it)
        /// under `pid`.
        func hookProcess(under pid: pid_t) -> pid_t? {
            var queue = [pid]
            while !queue.isEmpty {
                let next = queue.removeFirst()
                // runner-hook for a step (it sends it to the relay itself), the agent otherwise.
                if ["runner-hook", "runner-agent"].contains(ProcessTable.comm(of: next)) { return next }
                queue += ProcessTable.children(of: next)
            }
            return nil
        }

        @Test func hookAsTheRunnerUserThroughSudo() async throws {
            let host = try #require(HostGuest.current)
            let h = host.harness
            let owner = try await installHost(host)
            let state = HostLayout().guestStateDirectory

            // The rule lets the runner user run the helper as root, and nothing else.
            let other = try await host.run(["sudo", "-n", "/bin/true"], user: Self.user)
            #expect(other.status != .exited(0), "sudo -n /bin/true: \(other.standardError)")
            let shell = try await host.run(["sudo", "-n", "/bin/sh", "-c", "id -u"], user: Self.user)
            #expect(shell.status != .exited(0))
            #expect(!shell.standardOutput.contains("0"))
            // doctor reads the rule the installer wrote as correct, and a broader one as a hole.
            let doctor = [Installer.agentInCurrentRelease, "doctor", "--no-boot-check"]
            let checked = try await host.run(doctor)
            #expect(
                checked.standardOutput.contains(
                    "ok       ci-nspawn-run: \(Self.user) may run \(HostLayout().guestHelper)"),
                "\(checked.standardOutput)\(checked.standardError)")
            let broad = HostLayout().path("/etc/sudoers.d/zz-broad")
            try await host.sh("echo '\(Self.user) ALL=(ALL) NOPASSWD: ALL' > \(broad) && chmod 0440 \(broad)")
            let holed = try await host.run(doctor)
            try await host.sh("rm \(broad)")
            #expect(
                holed.standardOutput.contains("problem  ci-nspawn-run: sudo lets \(Self.user) run other commands"),
                "\(holed.standardOutput)")

            // A bind outside the allowed roots, straight to the helper: refused, nothing left.
            let refused = try await host.run(
                ["sudo", "-n", "--", HostLayout().guestHelper, "start", "--image", "job", "--bind", "/etc:/x"],
                user: Self.user, seconds: 60)
            #expect(refused.status != .exited(0))
            #expect(refused.standardError.contains("/etc"), "\(refused.standardError)")
            #expect(refused.standardError.contains("outside the allowed roots"), "\(refused.standardError)")
            #expect(try await leftovers(host, stateDirectory: state) == "")

            // prepare_job: the image is an alias from config.env, which only root can read.
            let responseFile = try h.newResponseFile()
            chown(responseFile, owner.uid, owner.gid)
            let prepared = try await hook(
                host, try h.prepareJob(responseFile: responseFile, services: ""), responseFile: responseFile)
            try #require(prepared.status == .exited(0), "\(prepared.text)\(prepared.stderr)")
            let jobState = try HookHarness.state(of: prepared.response)
            let guest = try #require(
                prepared.response.firstMatch(of: #/"container":\{"id":"(rg-[0-9a-f]{12})"/#).map { String($0.output.1) }
            )
            #expect(host.processes().contains { $0.first.map { FilePaths.basename($0) } == "systemd-nspawn" })
            let record = try await host.sh("cat \(state)/\(guest).json")
            #expect(record.contains("\"backend\":\"machined\""))
            // Its steps go through the guest's step relay, which only the runner user may reach.
            let relay = try await host.sh("stat -c '%U %a' /run/runner/relay/\(guest).sock")
            #expect(relay == "runner 600\n", "\(relay)")
            #expect(host.processes().contains { $0.count > 2 && $0[1...2] == ["relay", guest] })

            // A step: its exit code comes back through sudo; what it made is the runner user's.
            let step = try await hook(
                host,
                try h.runScriptStep(
                    "mkdir -p made/deeper && echo x > made/deeper/file && touch /__w/_temp/made-too\nexit 3\n",
                    state: jobState))
            #expect(step.status == .exited(3), "\(step.text)\(step.stderr)")
            for path in ["octo-repo/octo-repo/made", "octo-repo/octo-repo/made/deeper/file", "_temp/made-too"] {
                var st = stat()
                #expect(stat(h.work + "/" + path, &st) == 0, "\(path) is missing")
                #expect(
                    st.st_uid == owner.uid && st.st_gid == owner.gid, "\(path) is owned by \(st.st_uid):\(st.st_gid)")
            }

            // SIGINT to the hook mid-step stops the step within a few seconds, no unit left.
            let (worker, stdout, _) = try spawnHook(
                host, try h.runScriptStep("echo started\nsleep 300\necho not-reached\n", state: jobState))
            let deadline = MonotonicClock.now() + 30
            while MonotonicClock.now() < deadline,
                !String(decoding: (try? FilePaths.read(stdout)) ?? [], as: UTF8.self).contains("started")
            {
                await MonotonicClock.pause(seconds: 0.05)
            }
            let hookPID = try #require(hookProcess(under: worker.pid), "the hook is not running")
            #expect(host.processes().contains(["sleep", "300"]), "the step is not running")
            let signalled = MonotonicClock.now()
            kill(hookPID, SIGINT)
            let interrupted = await wait(worker, seconds: 20)
            let stopSeconds = MonotonicClock.now() - signalled
            #expect(interrupted != .exited(0))
            #expect(stopSeconds < 6, "the step took \(stopSeconds) s to stop after SIGINT")
            #expect(!String(decoding: (try? FilePaths.read(stdout)) ?? [], as: UTF8.self).contains("not-reached"))
            let units = try await host.run(
                [
                    "systemctl", "--machine=" + guest, "list-units", "--all", "--no-legend", "--plain",
                    guest + "-step-*",
                ],
                seconds: 30)
            #expect(units.status == .exited(0), "\(units.standardError)")
            #expect(units.standardOutput == "", "step units left: \(units.standardOutput)")
            let sleeps = host.processes().filter { $0 == ["sleep", "300"] }
            #expect(sleeps.isEmpty, "the step's processes live on: \(sleeps)")

            // cleanup_job: everything goes, by an orderly halt (not systemd's SIGKILL after
            // TimeoutStopSec).
            let before = MonotonicClock.now()
            let cleaned = try await hook(host, try h.cleanupJob(state: jobState))
            let cleanupSeconds = MonotonicClock.now() - before
            #expect(cleaned.status == .exited(0), "\(cleaned.text)\(cleaned.stderr)")
            #expect(cleanupSeconds < Double(SystemdRun.guestStopTimeoutSeconds) / 2, "cleanup took \(cleanupSeconds) s")
            #expect(try await stopTimeouts(host, guest: guest) == "")
            #expect(try await leftovers(host, stateDirectory: state) == "")
        }
    }
}
