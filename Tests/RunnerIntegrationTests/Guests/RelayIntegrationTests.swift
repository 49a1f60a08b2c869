import FoundationEssentials
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
    /// The hook as the runner user runs it on a host: unprivileged, its steps going through the
    /// guest's step relay (started by `ci-nspawn-run start` for that user) instead of sudo.
    @Suite(
        .serialized,
        .guestsAndSetpriv)
    struct RelayIntegrationTests {
        static let user = HookHarness.ownerUID

        /// A `run_script_step` for `guest`; with `relay`, its state names the guest's relay as
        /// prepare_job's does (runner-hook then sends it there itself), without it the state is
        /// one from before runner-hook (runner-hook hands the call to the agent).
        func step(
            _ entryPoint: String, _ args: [String], guest: String, prependPath: [String] = [], relay: String? = nil
        ) -> String {
            let quoted = { (items: [String]) in "[" + items.map { TestJSON.quote($0) }.joined(separator: ",") + "]" }
            let relayMember = relay.map { ",\"relay\":" + TestJSON.quote($0) } ?? ""
            return """
                {"command":"run_script_step","responseFile":null,"args":{"entryPoint":\(TestJSON.quote(entryPoint)),\
                "entryPointArgs":\(quoted(args)),"environmentVariables":{"FROM_STEP":"s"},\
                "prependPath":\(quoted(prependPath)),"workingDirectory":"/__w/octo-repo/octo-repo"},\
                "state":{"guest":"\(guest)","services":[],"environment":{"FROM_STATE":"yes"}\(relayMember)}}
                """
        }

        @Test func unprivilegedStepsGoThroughTheRelayAndEndWithTheGuest() async throws {
            let h = try await HookHarness()
            do {
                try await exercise(h)
            } catch {
                await h.finish()
                throw error
            }
            await h.finish()
        }

        /// A step's script that prints `$FROM_STATE` and its own unit's `RemainAfterExit`: `yes`
        /// for the unit the relay starts over the guest's systemd socket.
        static let showOwnUnit =
            #"u=$(grep -o '[^/]*\.service' /proc/self/cgroup | head -n1); echo "$FROM_STATE $(systemctl show -p RemainAfterExit --value "$u")""#

        func exercise(_ h: HookHarness) async throws {
            // Started by a process that leaves a descriptor open across exec (as a careless
            // parent would): the relay must not keep it.
            var leaked: [Int32] = [-1, -1]
            try #require(pipe(&leaked) == 0)
            defer { leaked.forEach { close($0) } }
            var start = Command(
                try #require(HookHarness.agent),
                ["guest", "start", "--image", "job", "--bind", h.work + ":/__w", "--relay-uid", "\(Self.user)"])
            start.environment = h.environment
            let out = h.dir.appending("start.out")
            let starter = try Spawner.spawn(start, options: SpawnOptions(standardOutput: .file(out)))
            #expect(await starter.wait() == .exited(0))
            let started = String(decoding: try FilePaths.read(out), as: UTF8.self)
            let name = try #require(started.firstMatch(of: /"name":"(rg-[0-9a-f]+)"/)?.1).description
            var st = stat()
            #expect(stat(h.layout.guestRelaySocket(name), &st) == 0)
            #expect(st.st_uid == Self.user && st.st_mode & 0o777 == 0o600)
            let relay = h.layout.guestRelaySocket(name)

            // A bare program name found on prependPath, the state's and the step's environment,
            // the working directory, the exit code, and what the step made handed to the user.
            try AtomicFile.write(
                "#!/bin/sh\necho \"relayed $FROM_STATE $FROM_STEP $(pwd) $(id -u)\"\necho err >&2\n"
                    + "touch /__w/octo-repo/relay-made\nexit 3\n",
                to: h.work + "/bin/hello-relay", mode: 0o755)
            // runner-hook sends it to the relay itself: it runs with no runner-agent beside it.
            let solo = h.dir.appending("solo")
            try FilePaths.createDirectory(solo, mode: 0o755)
            chmod(h.dir.path, 0o755)
            let copied = try await Spawner.spawn(Command("cp", [try #require(HookHarness.hookClient), solo])).wait()
            #expect(copied == .exited(0))
            let first = try await h.hook(
                step("hello-relay", [], guest: name, prependPath: ["/__w/bin"], relay: relay), asUser: Self.user,
                client: solo + "/runner-hook")
            #expect(first.status == .exited(3), "\(first.text)\(first.stderr)")
            #expect(first.text == "relayed yes s /__w/octo-repo/octo-repo 0\n")
            #expect(first.stderr == "err\n")
            #expect(lstat(h.work + "/octo-repo/relay-made", &st) == 0)
            #expect(st.st_uid == Self.user)
            // The same step from a state without the relay goes through the agent: same result.
            unlink(h.work + "/octo-repo/relay-made")
            let viaAgent = try await h.hook(
                step("hello-relay", [], guest: name, prependPath: ["/__w/bin"]), asUser: Self.user)
            #expect(viaAgent.status == .exited(3), "\(viaAgent.text)\(viaAgent.stderr)")
            #expect(viaAgent.text == first.text && viaAgent.stderr == first.stderr)
            #expect(lstat(h.work + "/octo-repo/relay-made", &st) == 0 && st.st_uid == Self.user)
            // Any other call needs the agent: without it, a clear error naming where it looked.
            let noAgent = try await h.hook(
                #"{"command":"cleanup_job","responseFile":null,"args":{},"state":null}"#, asUser: Self.user,
                client: solo + "/runner-hook")
            #expect(noAgent.status == .exited(1))
            #expect(noAgent.text.hasPrefix("::error::could not run \(solo)/runner-agent"), "\(noAgent.text)")
            #expect(noAgent.text.contains("runner-agent install"), "\(noAgent.text)")

            // The attack: the runner user asks this guest's relay for a step in another guest
            // (a state naming another guest, this relay's socket). The relay refuses it and runs
            // nothing: the canary the step would make is never made.
            let canary = h.work + "/octo-repo/other-guest-canary"
            let crossed = try await h.hook(
                step("touch", ["/__w/octo-repo/other-guest-canary"], guest: "rg-000000000000", relay: relay),
                asUser: Self.user)
            #expect(crossed.status == .exited(1))
            #expect(crossed.text.contains("::error::state.guest: names guest rg-000000000000"), "\(crossed.text)")
            #expect(!FilePaths.exists(canary))

            // The hook's stdout and stderr are files here: the guest gets pipes, never the
            // files themselves (their /proc/self/fd links would reopen host files as root).
            let fds = try await h.hook(
                step(
                    "bash", ["-c", "readlink /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2"], guest: name,
                    relay: relay),
                asUser: Self.user)
            #expect(fds.status == .exited(0), "\(fds.stderr)")
            let links = fds.text.split(separator: "\n")
            #expect(links.count == 3 && links[0] == "/dev/null", "\(fds.text)")
            #expect(links.dropFirst().allSatisfy { $0.hasPrefix("pipe:") }, "\(fds.text)")

            // Once serving, the relay keeps nothing it inherited beyond its standard streams:
            // every other descriptor of it is its own (close-on-exec).
            let relayPID = try #require(
                ProcessTable.allPIDs().first {
                    Array(ProcessTable.commandLine(of: $0).dropFirst().prefix(2)) == ["relay", name]
                })
            for entry in FilePaths.entries(of: "/proc/\(relayPID)/fdinfo") {
                guard let fd = Int32(entry), fd > 2,
                    let info = try? FilePaths.read("/proc/\(relayPID)/fdinfo/\(entry)"),
                    let flags = String(decoding: info, as: UTF8.self).split(separator: "\n")
                        .first(where: { $0.hasPrefix("flags:") })?.split(separator: "\t").last,
                    let value = Int(flags, radix: 8)
                else { continue }
                #expect(value & 0o2000000 != 0, "relay descriptor \(fd) was inherited")
            }

            // The steps went over the guest's systemd socket (our unit, RemainAfterExit=yes).
            let own = try await h.hook(
                step("bash", ["-c", Self.showOwnUnit], guest: name, relay: relay), asUser: Self.user)
            #expect(own.status == .exited(0), "\(own.stderr)")
            #expect(own.text == "yes yes\n")

            // SIGINT mid-step stops the step within a few seconds (130, as a shell reports it):
            // runner-hook passes it on to the relay.
            let (hook, stdout, _) = try await h.spawnHook(
                step("bash", ["-c", "echo started; sleep 60; echo not-reached"], guest: name, relay: relay),
                asUser: Self.user)
            let end = MonotonicClock.now() + 20
            while MonotonicClock.now() < end, (try? FilePaths.read(stdout))?.isEmpty ?? true {
                await MonotonicClock.pause(seconds: 0.05)
            }
            let signalled = MonotonicClock.now()
            hook.signal(SIGINT)
            let status = await hook.wait()
            #expect(MonotonicClock.now() - signalled < 5)
            #expect(status == .exited(130))
            #expect(String(decoding: (try? FilePaths.read(stdout)) ?? [], as: UTF8.self) == "started\n")

            // Another user cannot use the relay (the socket is the user's, and the relay checks
            // the peer); without a sudo rule it gets nowhere.
            let other = try await h.hook(
                step("touch", ["/__w/octo-repo/other-made"], guest: name, relay: relay), asUser: Self.user + 1)
            #expect(other.status != .exited(0))
            #expect(!FilePaths.exists(h.work + "/octo-repo/other-made"))

            // The relay ends with its guest: no process, no socket.
            let stopped = await h.runAgent(["guest", "stop", name])
            #expect(stopped.status == .exited(0), "\(stopped.stderr)")
            #expect(await h.leftoversAfterSettling() == [])

            // A step for a guest that is gone fails clearly (no relay, no sudo rule here).
            let gone = try await h.hook(step("true", [], guest: name), asUser: Self.user)
            #expect(gone.status != .exited(0))
            let goneRelay = try await h.hook(step("true", [], guest: name, relay: relay), asUser: Self.user)
            #expect(goneRelay.status != .exited(0))
        }
    }
}
