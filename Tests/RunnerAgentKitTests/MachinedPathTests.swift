import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

#if canImport(Glibc)
    import Glibc
#endif

/// A "host" tree (systemd, dbus, systemd-container): booted, it has systemd as PID 1 and
/// machined, like a real appliance host (nspawn-notes.md §2).
enum HostTree {
    static let packages = ["systemd", "dbus", "systemd-container", "bash", "coreutils", "python3", "libarchive13"]

    static var cacheDirectory: String {
        let key = SHA256Digest.hex(of: Array("bookworm minbase \(packages.joined(separator: ",")) host v1".utf8))
        return "/var/cache/runner-tests/host-" + String(key.prefix(16))
    }

    static func mmdebstrap(target: String) -> Command {
        Command(
            "mmdebstrap",
            [
                "--quiet", "--variant=minbase", "--include=" + packages.joined(separator: ","),
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                "--customize-hook=rm -f \"$1/etc/resolv.conf\"", "--customize-hook=echo host > \"$1/etc/hostname\"",
                "bookworm", target,
            ])
    }

    static func tree() async throws -> String {
        let path = cacheDirectory
        if FilePaths.exists(path + "/usr/lib/systemd/systemd-machined") { return path }
        let temporary = FilePaths.temporarySibling(of: path)
        let command = mmdebstrap(target: temporary)
        try await SubprocessCommandRunner().run(command).checked(command)
        guard rename(temporary, path) == 0 else { throw RunnerError.posix("rename", path, fix: nil) }
        return path
    }
}

extension GuestSuites {
    /// The production path (machined registers the guest, steps through `systemd-run -M`), run inside
    /// a booted host guest on the build machine. Opt-in (`RUNNER_TEST_MACHINED=1`): on this build
    /// machine (cgroup v1 hybrid, PID 1 not systemd) start, registration and exec pass, but stopping
    /// the nested guest inside the host guest hung in 2 of 3 runs, so CI does not run it by default.
    @Suite(
        .serialized,
        .enabled(
            if: HookHarness.isAvailable, "needs root, systemd-nspawn, mmdebstrap, the built runner-agent and ../shared"),
        .enabled(if: ProcessEnvironment.value("RUNNER_TEST_MACHINED") == "1", "opt-in: RUNNER_TEST_MACHINED=1"))
    struct MachinedPathTests {
        @Test func guestLifecycleThroughMachined() async throws {
            let h = try await HookHarness()
            do {
                try await lifecycle(h)
            } catch {
                await h.finish()
                throw error
            }
            await h.finish()
        }

        func lifecycle(_ h: HookHarness) async throws {
            let hostTree = try await HostTree.tree()
            let agent = try #require(HookHarness.agent)
            let agentDirectory = FilePaths.parent(of: agent)
            let name = "rhost-" + String(GuestPolicy.newGuestName().dropFirst(3))
            let socket = try RunnerAgentKit.NotifySocket(path: h.dir.appending("host.notify"))
            var boot = SystemdNspawn.BootOptions(directory: hostTree, machine: name)
            boot.binds = [
                GuestBind(source: h.dir.path, target: h.dir.path),
                GuestBind(source: agentDirectory, target: agentDirectory, readOnly: true),
            ]
            // The debug agent links the toolchain's runtime; a release (static) one needs nothing.
            if FilePaths.exists("/opt/swift/usr/lib/swift/linux") {
                boot.binds.append(GuestBind(source: "/opt/swift", target: "/opt/swift", readOnly: true))
            }
            var command = SystemdNspawn.boot(boot)
            command.arguments.insert("--capability=all", at: 1)
            command.environment["NOTIFY_SOCKET"] = socket.path
            let nspawn = try Posix.spawn(
                command, stdout: .file(h.dir.appending("host.log")), stderr: .file(h.dir.appending("host.log")),
                newSession: true)
            defer {
                GuestManager.terminate(pid: nspawn, startTime: nil)
                _ = Posix.poll(nspawn)
            }
            var leader: Int32?
            var ready = false
            let deadline = Posix.now() + 60
            while !ready, Posix.now() < deadline {
                for line in socket.receive(timeout: 0.5) ?? [] {
                    if line.hasPrefix("X_NSPAWN_LEADER_PID=") { leader = Int32(line.dropFirst(20)) }
                    if line == "READY=1" { ready = true }
                }
            }
            let hostLeader = try #require(leader)
            #expect(ready)

            func inHost(_ arguments: [String]) async throws -> CommandResult {
                let inner = Command(
                    "/usr/bin/env", ["RUNNER_HOST_ROOT=" + h.layout.root, agent, "guest"] + arguments)
                return try await SubprocessCommandRunner().run(
                    Timeout.bounded(seconds: 90, Nsenter.enter(leader: hostLeader, inner)))
            }
            let started = try await inHost(["start", "--image", "job", "--bind", h.work + ":/__w"])
            #expect(started.status == .exited(0), "\(started.standardError)")
            let info = try JSONDecoder().decode(GuestInfo.self, from: Data(started.standardOutput.utf8))
            let record = try #require(
                try? JSONDecoder().decode(
                    GuestRecord.self, from: Data(try FilePaths.read(h.layout.guestRecord(info.name)))))
            #expect(record.backend == .machined)
            let machines = try await SubprocessCommandRunner().run(
                Timeout.bounded(seconds: 30, Nsenter.enter(leader: hostLeader, Machinectl.list())))
            #expect(machines.standardOutput.contains(info.name))
            let exec = try await inHost(["exec", info.name, "--cwd", "/__w", "--", "sh", "-c", "pwd; exit 3"])
            #expect(exec.status == .exited(3), "\(exec.standardError)")
            #expect(exec.standardOutput == "/__w\n")
            let stop = try await inHost(["stop", info.name])
            #expect(stop.status == .exited(0), "\(stop.standardError)")
            let after = try await SubprocessCommandRunner().run(
                Timeout.bounded(seconds: 30, Nsenter.enter(leader: hostLeader, Machinectl.list())))
            #expect(!after.standardOutput.contains(info.name))
            #expect(!FilePaths.exists(h.layout.guestRecord(info.name)))
        }
    }
}
