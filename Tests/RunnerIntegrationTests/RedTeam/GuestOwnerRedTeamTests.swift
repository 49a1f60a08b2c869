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
    /// Issue #10 route 12 (a guest without a live owner outlived gc), 13 in part (a guest that
    /// took every inotify instance must not outlive its job) and issue #12 defect 3 (gc killed
    /// a nested appliance's guests). Nested in ``GuestSuites``: its guest test runs alone.
    @Suite(.serialized)
    struct GuestOwnerRedTeamTests {
        static let callerUID: UInt32 = 4243

        /// A process of `callerUID` (a shell) with a child (`sleep`): the child plays the helper's
        /// parent, the shell its ancestor.
        static func callerChain() async throws -> (shell: ChildProcess, child: pid_t) {
            let command = Setpriv().asUser(
                uid: callerUID, gid: callerUID, Command("/bin/sh", ["-c", "sleep 600 & wait"]))
            let shell = try Spawner.spawn(
                Command(command.executable, command.arguments.map { $0 == "--init-groups" ? "--clear-groups" : $0 }),
                options: SpawnOptions(standardOutput: .devNull, standardError: .devNull))
            for _ in 0..<200 {
                if let child = ProcessTable.children(of: shell.pid).first(where: {
                    ProcessTable.comm(of: $0) == "sleep"
                }) {
                    return (shell, child)
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw RunnerError(.timeout, input: "sh", problem: "started no sleep")
        }

        static func end(_ process: ChildProcess) {
            process.signal(SIGKILL)
            _ = process.waitBlocking()
        }

        @Test(.requiresRoot, .requires("setpriv"))
        func aSudoCallerMayOnlyNameItsOwnAncestorAsOwner() async throws {
            let (shellProcess, child) = try await Self.callerChain()
            defer {
                kill(child, SIGKILL)
                Self.end(shellProcess)
            }
            let (otherShellProcess, otherChild) = try await Self.callerChain()
            defer {
                kill(otherChild, SIGKILL)
                Self.end(otherShellProcess)
            }
            let (shell, otherShell) = (shellProcess.pid, otherShellProcess.pid)
            let caller = GuestOwner.Caller(sudoUID: Self.callerUID, parent: child)
            // PID 1 never exits: a guest it owned would never be removed.
            #expect(throws: RunnerError.self) { try GuestOwner.resolve(requested: 1, caller: caller) }
            // Root's process (this test), and another process of the same user that did not call.
            #expect(throws: RunnerError.self) { try GuestOwner.resolve(requested: getpid(), caller: caller) }
            #expect(throws: RunnerError.self) { try GuestOwner.resolve(requested: otherShell, caller: caller) }
            #expect(throws: RunnerError.self) { try GuestOwner.resolve(requested: 999_999, caller: caller) }
            // Its own ancestor, with its start time; without one, the nearest ancestor of its own.
            let owner = try GuestOwner.resolve(requested: shell, caller: caller)
            #expect(owner.pid == shell && owner.startTime == ProcessTable.startTime(of: shell))
            #expect(try GuestOwner.resolve(requested: nil, caller: caller).pid == child)
            // A root caller may name any live process but PID 1; without one, its parent.
            let root = GuestOwner.Caller(sudoUID: nil, parent: getpid())
            #expect(throws: RunnerError.self) { try GuestOwner.resolve(requested: 1, caller: root) }
            #expect(try GuestOwner.resolve(requested: nil, caller: root).pid == getpid())
            #expect(try GuestOwner.resolve(requested: otherShell, caller: root).pid == otherShell)
        }

        /// `ci-nspawn-run start --owner-pid 1` as a sudo caller would run it: refused, first.
        @Test(.requiresRoot, .enabled(if: HookHarness.agent != nil, "needs the built runner-agent"))
        func theHelperThroughSudoRefusesPID1AsOwner() async throws {
            try await withTemporaryDirectory("owner") { dir in
                let helper = dir.appending("ci-nspawn-run")
                symlink(try #require(HookHarness.agent), helper)
                for arguments in [["--owner-pid", "1"], ["--owner-pid", "0"]] {
                    var command = Command(helper, ["start", "--image", "job"] + arguments)
                    command.environment = ["SUDO_UID": "\(Self.callerUID)", "SUDO_GID": "\(Self.callerUID)"]
                    let result = try await SystemCommandRunner().run(command)
                    #expect(!result.status.isSuccess)
                    #expect(result.standardError.contains("--owner-pid \(arguments[1])"), "\(result.standardError)")
                }
            }
        }

        /// A record without an owner (what an older helper wrote for `start` without one) is stale.
        @Test func aGuestWithoutAnOwnerIsStale() throws {
            let manager = GuestManager(
                policy: GuestPolicy(layout: HostLayout(root: "/nonexistent")), logger: Logger(label: "t"))
            var record = GuestRecord(
                name: "rg-0123456789ab", image: "job", rootfs: "/x", backend: .direct, status: .running,
                starterPID: getpid(), starterStartTime: ProcessTable.startTime(of: getpid()), nspawnPID: getpid(),
                nspawnStartTime: ProcessTable.startTime(of: getpid()), binds: [], isAlpine: false)
            #expect(manager.isStale(record))
            record.ownerPID = getpid()
            record.ownerStartTime = ProcessTable.startTime(of: getpid())
            #expect(!manager.isStale(record))
        }

        /// gc sweeps record-less nspawn processes on its store, but only in its own PID
        /// namespace: one in another namespace (a nested appliance's guest) is left alone.
        @Test(
            .requiresRoot, .requires("unshare"),
            .enabled(if: FilePaths.exists("/usr/bin/python3"), "needs /usr/bin/python3"))
        func gcLeavesNspawnProcessesOfOtherPIDNamespacesAlone() async throws {
            try await withTemporaryDirectory("gcns") { dir in
                let layout = dir.layout
                try FilePaths.createDirectory(layout.imagesDirectory + "/x")
                try FilePaths.createDirectory(layout.guestStateDirectory)
                let store = try #require(GuestPolicy.realPath(layout.imagesDirectory))
                // A python3 called systemd-nspawn (comm and argv[0]) with a guest's arguments.
                let fake = dir.appending("systemd-nspawn")
                // The real binary: a wrapper on PATH (pyenv's shim) would dispatch on the name.
                symlink(try #require(GuestPolicy.realPath("/usr/bin/python3")), fake)
                let argv = [
                    fake, "-c", "import time; time.sleep(600)", "--machine=rg-0123456789ab", "--directory=\(store)/x",
                ]
                let quiet = SpawnOptions(standardOutput: .devNull, standardError: .devNull)
                let nested = try Spawner.spawn(
                    Command("unshare", ["--pid", "--fork", "--mount-proc", "--"] + argv), options: quiet)
                let ours = try Spawner.spawn(
                    Command(argv[0], argv.dropFirst().map { $0.replacing("rg-0123456789ab", with: "rg-0123456789ac") }),
                    options: quiet)
                defer {
                    Self.end(ours)
                    for child in ProcessTable.children(of: nested.pid) { kill(child, SIGKILL) }
                    Self.end(nested)
                }
                var inner: pid_t?
                for _ in 0..<300 where inner == nil {
                    inner = ProcessTable.children(of: nested.pid).first {
                        ProcessTable.comm(of: $0) == "systemd-nspawn"
                    }
                    if inner == nil { try await Task.sleep(for: .milliseconds(10)) }
                }
                let victim = try #require(inner, "the nested fake did not start")
                for _ in 0..<300 where ProcessTable.comm(of: ours.pid) != "systemd-nspawn" {
                    try await Task.sleep(for: .milliseconds(10))
                }
                let manager = GuestManager(policy: GuestPolicy(layout: layout), logger: Logger(label: "t"))
                // The control: the same process in our namespace is swept (a few rounds: on a
                // loaded machine it may not have finished starting).
                var removed: [String] = []
                for _ in 0..<5 where !removed.contains("rg-0123456789ac") {
                    removed += await manager.gc()
                    if !removed.contains("rg-0123456789ac") { try await Task.sleep(for: .milliseconds(200)) }
                }
                #expect(removed.contains("rg-0123456789ac"), "gc did not sweep the control: \(removed)")
                #expect(ProcessTable.isAlive(victim, startTime: nil), "gc killed a process of another PID namespace")
                #expect(!removed.contains("rg-0123456789ab"))
            }
        }

        /// A guest takes every inotify instance its root may have (a unit that outlives the
        /// step), its owner dies, gc runs: the next guest boots and runs a step.
        @Test(
            .enabled(
                if: HookHarness.isAvailable,
                "needs root, systemd-nspawn, mmdebstrap and the built runner-agent and runner-hook"))
        func aGuestHoardingInotifyDoesNotOutliveItsOwner() async throws {
            let h = try await HookHarness()
            let owner = try Spawner.spawn(
                Command("sleep", ["600"]), options: SpawnOptions(standardOutput: .devNull, standardError: .devNull))
            do {
                let started = await h.runAgent(
                    ["start", "--image", "job", "--owner-pid", "\(owner.pid)"], asHelper: true)
                #expect(started.status == .exited(0), "\(started.stderr)")
                let info = try JSONDecoder().decode(GuestInfo.self, from: Data(started.stdout))
                let hoard = """
                    import ctypes, time
                    libc = ctypes.CDLL(None, use_errno=True)
                    n = 0
                    while libc.inotify_init1(0) >= 0:
                        n += 1
                    open("/run/inotify-full", "w").write(str(n))
                    time.sleep(3600)
                    """
                let hog = await h.runAgent(
                    ["exec", info.name, "--", "systemd-run", "--unit=inotify-hog", "python3", "-c", hoard],
                    asHelper: true)
                #expect(hog.status == .exited(0), "\(hog.stderr)")
                let full = await h.runAgent(
                    [
                        "exec", info.name, "--timeout", "60", "--", "sh", "-c",
                        "while [ ! -e /run/inotify-full ]; do sleep 0.1; done",
                    ], asHelper: true)
                #expect(full.status == .exited(0), "the hoarding unit did not run: \(full.stderr)")
                // The job ends without cleanup: its owner is gone, gc runs.
                Self.end(owner)
                let gc = await h.runAgent(["gc"], asHelper: true)
                #expect(gc.text.contains("removed \(info.name)"), "\(gc.text) \(gc.stderr)")
                let next = await h.runAgent(
                    ["start", "--image", "job", "--owner-pid", "\(h.owner)"], asHelper: true)
                #expect(next.status == .exited(0), "the next guest did not boot: \(next.stderr)")
                if next.status == .exited(0) {
                    let second = try JSONDecoder().decode(GuestInfo.self, from: Data(next.stdout))
                    let step = await h.runAgent(["exec", second.name, "--", "true"], asHelper: true)
                    #expect(step.status == .exited(0), "\(step.stderr)")
                }
            } catch {
                Self.end(owner)
                await h.finish()
                throw error
            }
            Self.end(owner)
            await h.finish()
        }
    }
}
