import CRunnerSystem
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The one spawner (``Spawner``) and its handle (``ChildProcess``): argv, environment, working
/// directory, each standard stream, process groups and sessions, signal state, and the waits.
@Suite struct SpawnerTests {
    /// Fields of `/proc/<pid>/stat` after the command name: [0] state, [2] process group,
    /// [3] session.
    static func stat(of pid: Int32) -> [Substring] {
        let text = String(decoding: ProcessTable.readSmall("/proc/\(pid)/stat") ?? [], as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return [] }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// A `Status:`-style line of `/proc/<pid>/status` (`SigIgn:`, `SigBlk:`).
    static func statusLine(_ name: String, of pid: Int32) -> String? {
        let text = String(decoding: ProcessTable.readSmall("/proc/\(pid)/status", limit: 8192) ?? [], as: UTF8.self)
        return text.split(separator: "\n").first { $0.hasPrefix(name + ":") }.map {
            $0.dropFirst(name.count + 1).trimmingPrefix(while: { $0 == "\t" || $0 == " " }).description
        }
    }

    /// Runs `script` under `/bin/sh` with stdout on a pipe and returns what it wrote and its status.
    static func output(
        _ command: Command, _ options: SpawnOptions = SpawnOptions(standardOutput: .pipe)
    ) async throws -> (String, RunnerCore.ExitStatus) {
        let child = try Spawner.spawn(command, options: options)
        let result = await DedicatedThread.run { child.collectBlocking(limit: 1 << 20) }
        return (String(decoding: result.output, as: UTF8.self), result.status)
    }

    @Test func aDescriptorLeftWithoutCloseOnExecNeverReachesTheChild() async throws {
        // As a careless part of this process would leave one: a pipe without close-on-exec. A
        // child of ours (mmdebstrap, nspawn, sudo, …) gets its three standard streams only.
        var leaked: [Int32] = [-1, -1]
        try #require(pipe(&leaked) == 0)
        defer { leaked.forEach { close($0) } }
        let probe = leaked.map { "[ -e /proc/self/fd/\($0) ] && echo leaked || echo closed" }.joined(separator: "; ")
        let (out, status) = try await Self.output(Command("/bin/sh", ["-c", probe]))
        #expect(status == .exited(0))
        #expect(out == "closed\nclosed\n")
        // Descriptors given as standard streams still arrive there.
        let (passed, _) = try await Self.output(
            Command("/bin/sh", ["-c", "cat"]),
            SpawnOptions(standardInput: .bytes(Array("through\n".utf8)), standardOutput: .pipe))
        #expect(passed == "through\n")
    }

    @Test func argvReachesTheChildWordForWord() async throws {
        let words = ["two words", "", "'quoted'", "$HOME", "semi;colon", "ünïcode"]
        let (out, status) = try await Self.output(Command("/bin/sh", ["-c", #"printf '[%s]\n' "$@""#, "sh"] + words))
        #expect(status == .exited(0))
        #expect(out == words.map { "[\($0)]\n" }.joined())
    }

    @Test func environmentIsOursPlusTheCommandsOrOnlyTheCommands() async throws {
        setenv("SPAWNER_TEST_INHERITED", "from-us", 1)
        setenv("SPAWNER_TEST_REMOVED", "gone", 1)
        let show = #"echo "${SPAWNER_TEST_INHERITED-unset} ${SPAWNER_TEST_REMOVED-unset} ${ADDED-unset}""#
        let added = Command(
            "/bin/sh", ["-c", show], environment: ["ADDED": "yes", "SPAWNER_TEST_REMOVED": nil])
        #expect(try await Self.output(added).0 == "from-us unset yes\n")
        let cleared = Command(
            "/bin/sh", ["-c", show + "; env | wc -l"], environment: ["ADDED": "only"], clearsEnvironment: true)
        // sh adds PWD (and maybe SHLVL, _) itself; nothing of ours arrives.
        let lines = try await Self.output(cleared).0.split(separator: "\n")
        #expect(lines.first == "unset unset only")
        #expect((Int(lines.last ?? "") ?? 99) <= 4)
    }

    @Test func aBareNameIsFoundOnThePathAndTheWorkingDirectoryIsEntered() async throws {
        let (out, status) = try await Self.output(Command("pwd", [], workingDirectory: "/usr/share"))
        #expect(status == .exited(0))
        #expect(out == "/usr/share\n")
    }

    @Test func aProgramThatCannotStartIsACommandFailure() throws {
        for command in [
            Command("/nonexistent/tool"), Command("no-such-tool-anywhere"),
            Command("/bin/true", [], workingDirectory: "/nonexistent"),
        ] {
            do {
                _ = try Spawner.spawn(command)
                Issue.record("\(command) started")
            } catch {
                #expect(error.code == .commandFailed, "\(error)")
            }
        }
    }

    /// A program still open for writing somewhere (as when a child that another thread started
    /// holds a copy of the writer's descriptor until its exec) is busy for the kernel. It starts
    /// once the writer lets go within the retries, and stays a clear failure while it does not.
    @Test func aProgramBusyForAMomentStartsAndOneThatStaysBusyFails() async throws {
        try await withTemporaryDirectory("spawn") { dir in
            let script = dir.appending("fresh.sh")
            let writer = open(script, O_WRONLY | O_CREAT | O_CLOEXEC, 0o755)
            try #require(writer >= 0)
            let text = Array("#!/bin/sh\necho started\n".utf8)
            try #require(write(writer, text, text.count) == text.count)

            // Held for the whole time: every retry sees it busy.
            do {
                _ = try Spawner.spawn(Command(script))
                Issue.record("a program open for writing started")
            } catch let error as RunnerError {
                #expect(error.code == .commandFailed)
                #expect(error.problem.contains(String(cString: strerror(ETXTBSY))), "\(error)")
            }

            // Let go 20 ms into the spawn: it runs. (The flag is set before the close, so a start
            // that succeeded must have seen it set: the first attempts found the program busy.)
            let released = Atomic<Bool>(false)
            DedicatedThread.start {
                usleep(20_000)
                released.store(true, ordering: .sequentiallyConsistent)
                close(writer)
            }
            let (out, status) = try await Self.output(Command(script))
            let wasReleased = released.load(ordering: .sequentiallyConsistent)
            #expect(wasReleased)
            #expect(status == .exited(0))
            #expect(out == "started\n")
        }
    }

    @Test func eachStandardStreamGoesWhereItIsTold() async throws {
        try await withTemporaryDirectory("spawner") { dir in
            let input = dir.appending("input")
            try AtomicFile.write("from a file\n", to: input)
            let log = dir.appending("log")
            try AtomicFile.write("before\n", to: log)
            // stdin from a file, stdout appended to a file, stderr with it (2>&1).
            let toFile = try Spawner.spawn(
                Command("/bin/sh", ["-c", "cat; echo to-stderr >&2"]),
                options: SpawnOptions(
                    standardInput: .file(input), standardOutput: .file(log), standardError: .standardOutput))
            #expect(await toFile.wait() == .exited(0))
            #expect(String(decoding: try FilePaths.read(log), as: UTF8.self) == "before\nfrom a file\nto-stderr\n")

            // stdin bytes; stdout and stderr on pipes of their own.
            let piped = try Spawner.spawn(
                Command("/bin/sh", ["-c", "cat; echo err >&2"]),
                options: SpawnOptions(
                    standardInput: .bytes(Array("bytes\n".utf8)), standardOutput: .pipe, standardError: .pipe))
            let result = await DedicatedThread.run { piped.collectBlocking(limit: 100) }
            #expect(result.status == .exited(0))
            #expect(String(decoding: result.output, as: UTF8.self) == "bytes\n")
            #expect(String(decoding: result.errorOutput, as: UTF8.self) == "err\n")

            // A descriptor of ours as stdout; /dev/null as stdin and stderr.
            var ends: [Int32] = [-1, -1]
            try #require(pipe(&ends) == 0)
            defer { close(ends[0]) }
            let described = try Spawner.spawn(
                Command("/bin/sh", ["-c", "cat; echo out; echo lost >&2"]),
                options: SpawnOptions(
                    standardInput: .devNull, standardOutput: .descriptor(ends[1]), standardError: .devNull))
            close(ends[1])
            #expect(await described.wait() == .exited(0))
            var buffer = [UInt8](repeating: 0, count: 100)
            let n = read(ends[0], &buffer, buffer.count)
            #expect(String(decoding: buffer[0..<max(0, n)], as: UTF8.self) == "out\n")
        }
    }

    @Test func inputLargerThanAPipeIsWrittenWhileTheChildReads() async throws {
        let input = [UInt8](repeating: UInt8(ascii: "x"), count: 3 << 20)
        let (out, status) = try await Self.output(
            Command("wc", ["-c"]), SpawnOptions(standardInput: .bytes(input), standardOutput: .pipe))
        #expect(status == .exited(0))
        #expect(out.trimmedWhitespace == "\(3 << 20)")
        // A child that reads none of it: the writer gives up, nothing hangs or dies of SIGPIPE.
        let ignored = try Spawner.spawn(Command("/bin/true"), options: SpawnOptions(standardInput: .bytes(input)))
        #expect(await ignored.wait() == .exited(0))
    }

    @Test func groupingPutsTheChildInOurGroupANewGroupOrANewSession() async throws {
        let ours = Self.stat(of: getpid())
        for grouping in [ProcessGrouping.sameGroup, .newProcessGroup, .newSession] {
            let child = try Spawner.spawn(Command("sleep", ["30"]), options: SpawnOptions(grouping: grouping))
            defer {
                child.signal(SIGKILL)
                _ = child.waitBlocking()
            }
            let fields = Self.stat(of: child.pid)
            try #require(fields.count > 3)
            let (group, session) = (Int32(fields[2]), Int32(fields[3]))
            switch grouping {
            case .sameGroup:
                #expect(fields[2] == ours[2] && fields[3] == ours[3])
            case .newProcessGroup:
                #expect(group == child.pid && fields[3] == ours[3])
            case .newSession:
                #expect(group == child.pid && session == child.pid)
            }
        }
    }

    /// What we ignore or block is not the child's: every signal at its default, none blocked.
    @Test func signalsAreAtTheirDefaultsInTheChild() async throws {
        let previous = signal(SIGXCPU, SIG_IGN)
        defer { signal(SIGXCPU, previous) }
        let child = try Spawner.spawn(Command("sleep", ["30"]))
        defer {
            child.signal(SIGKILL)
            _ = child.waitBlocking()
        }
        // Until exec, the status shows the spawner's; wait for sleep's own.
        for _ in 0..<200 where ProcessTable.comm(of: child.pid) != "sleep" {
            try await Task.sleep(for: .milliseconds(5))
        }
        // Signals 1-31; glibc's posix_spawn leaves its own two (32, 33: thread cancellation and
        // set*id broadcasts) ignored across exec.
        let ignored = UInt64(Self.statusLine("SigIgn", of: child.pid) ?? "", radix: 16)
        let blocked = UInt64(Self.statusLine("SigBlk", of: child.pid) ?? "", radix: 16)
        #expect(ignored.map { $0 & 0x7fff_ffff } == 0, "SigIgn \(String(ignored ?? 0, radix: 16))")
        #expect(blocked == 0, "SigBlk \(String(blocked ?? 0, radix: 16))")
    }

    @Test func theHandleSignalsPollsAndWaits() async throws {
        let child = try Spawner.spawn(
            Command("/bin/sh", ["-c", "echo ready; exec sleep 30"]),
            options: SpawnOptions(standardOutput: .pipe, standardError: .standardOutput, grouping: .newProcessGroup))
        #expect(child.pidfd >= 0, "this kernel has process descriptors")
        var said: [UInt8] = []
        for _ in 0..<400 where !said.contains(UInt8(ascii: "\n")) {
            said += child.readAvailableOutput()
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(String(decoding: said, as: UTF8.self) == "ready\n")
        #expect(child.poll() == nil)
        // Several waiters at once (async, blocking on a thread, polling) all see the one status.
        async let first = child.wait()
        async let second = DedicatedThread.run { child.waitBlocking() }
        child.signalGroup(SIGTERM)
        let statuses = await [first, second]
        #expect(statuses == [.signaled(SIGTERM), .signaled(SIGTERM)])
        #expect(child.poll() == .signaled(SIGTERM))
        #expect(!child.signal(SIGKILL), "a reaped child is gone")
    }

    /// Awaiting children holds no thread of the cooperative pool: while more of them than there
    /// are cores are awaited for 3 s, a task that ticks every 20 ms is never held up for long
    /// (with blocking waits, the pool's threads would be stuck until the children end, 3 s).
    /// The bound is half of that, far above any scheduling delay: not a speed target.
    @Test func waitingForChildrenLeavesTheCooperativePoolFree() async throws {
        let clock = ContinuousClock()
        let spawning = clock.now
        let children = try (0..<8).map { _ in try Spawner.spawn(Command("sleep", ["3"])) }
        let started = clock.now
        let slowest = Mutex(Duration.zero)
        let ticking = Task {
            while !Task.isCancelled {
                let before = clock.now
                try? await Task.sleep(for: .milliseconds(20))
                let late = clock.now - before
                slowest.withLock { $0 = max($0, late) }
            }
        }
        await withTaskGroup(of: RunnerCore.ExitStatus.self) { group in
            for child in children { group.addTask { await child.wait() } }
            for await status in group { #expect(status == .exited(0)) }
        }
        ticking.cancel()
        let waited = clock.now - started
        let late = slowest.withLock { $0 }
        #expect(
            late < .milliseconds(1500),
            "a 20 ms sleep took \(late) while 8 × 3 s children were awaited for \(waited) (spawning: \(started - spawning))"
        )
    }

    @Test func aPIDKnownOnlyFromARecordIsReapedWithoutWaiting() async throws {
        let child = try Spawner.spawn(Command("/bin/sh", ["-c", "exit 4"]))
        var status: RunnerCore.ExitStatus?
        for _ in 0..<400 where status == nil {
            status = ChildProcess.reap(child.pid)
            if status == nil { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(status == .exited(4))
        #expect(ChildProcess.reap(getppid()) == .exited(127), "not our child")
    }

    @Test func theSetsidFlagIsGlibcs() {
        // process.c checks it against <spawn.h> at compile time; here: it is not a POSIX flag.
        let posix = Int32(POSIX_SPAWN_RESETIDS | POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        #expect(RUNNER_POSIX_SPAWN_SETSID & posix == 0)
    }
}
