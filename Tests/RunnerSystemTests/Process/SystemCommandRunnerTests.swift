import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The real ``CommandRunner``: run to completion (bounded capture, input, exit status as data,
/// teardown on cancellation) and start for long-lived children.
@Suite struct SystemCommandRunnerTests {
    let runner = SystemCommandRunner()

    @Test func captureKeepsTheLastBytesOfEachStreamAndNeverFailsOnVolume() async throws {
        // 8 MiB on each stream, the limit 1000 bytes: the tail of each is kept.
        let script =
            "head -c 8388608 /dev/zero | tr '\\0' o; echo OUT-END; "
            + "head -c 8388608 /dev/zero | tr '\\0' e >&2; echo ERR-END >&2; exit 3"
        let result = try await runner.run(
            Command("/bin/sh", ["-c", script]), input: nil, output: .capture(limit: 1000))
        #expect(result.status == .exited(3), "a non-zero exit is data")
        #expect(result.standardOutput.utf8.count == 1000)
        #expect(result.standardOutput.hasSuffix("oooOUT-END\n"))
        #expect(result.standardError.utf8.count == 1000)
        #expect(result.standardError.hasSuffix("eeeERR-END\n"))
    }

    @Test func aSignalledCommandIsDataToo() async throws {
        let result = try await runner.run(Command("/bin/sh", ["-c", "kill -TERM $$"]))
        #expect(result.status == .signaled(SIGTERM))
        #expect(result.status.shellCode == 143)
    }

    @Test func inputArgvAndEnvironmentReachTheCommand() async throws {
        let command = Command(
            "/bin/sh", ["-c", "read -r line; echo \"$line|$1|$GREETING\"", "sh", "an argument"],
            environment: ["GREETING": "hi"])
        #expect(try await runner.output(command, input: Array("the input\n".utf8)) == "the input|an argument|hi\n")
        // No input: an empty stdin, never ours.
        #expect(try await runner.output(Command("/bin/cat")) == "")
    }

    @Test func capturedAndDiscardedCommandsRunInASessionOfTheirOwn() async throws {
        let ours = SpawnerTests.stat(of: getpid())[3]
        let show = Command("/bin/sh", ["-c", "cut -d' ' -f6 /proc/$$/stat"])
        let session = try await runner.output(show).trimmedWhitespace
        #expect(session != ours && Int32(session) != nil)
        // Discarded output: still its own session (checked through a file).
        let dir = try TemporaryDirectory("runner-session")
        defer { dir.remove() }
        let file = dir.appending("session")
        let discard = Command("/bin/sh", ["-c", "cut -d' ' -f6 /proc/$$/stat > \(file)"])
        #expect(try await runner.run(discard, input: nil, output: .discard).status == .exited(0))
        #expect(String(decoding: try FilePaths.read(file), as: UTF8.self).trimmedWhitespace != ours)
    }

    /// Cancelling the task tears the command down: its whole session, the grandchild that holds
    /// the output too (a canary whose PID the test reads), and one that ignores SIGTERM is
    /// killed after the grace.
    @Test(arguments: [false, true])
    func cancellationKillsTheCommandAndItsChildren(ignoringSIGTERM: Bool) async throws {
        try await withTemporaryDirectory("runner-cancel") { dir in
            let pids = dir.appending("pids")
            let trap = ignoringSIGTERM ? "trap '' TERM; " : ""
            let script = trap + "sleep 300 & echo $$ $! > \(pids).tmp; mv \(pids).tmp \(pids); wait; echo unreachable"
            let runner = SystemCommandRunner(teardownGrace: .milliseconds(500))
            let task = Task {
                try await runner.run(Command("/bin/sh", ["-c", script]), input: nil, output: .captured)
            }
            var written: [Int32] = []
            for _ in 0..<1000 where written.count < 2 {
                written = String(decoding: (try? FilePaths.read(pids)) ?? [], as: UTF8.self).split(separator: " ")
                    .compactMap { Int32($0.trimmedWhitespace) }
                if written.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
            }
            try #require(written.count == 2, "the canary did not start")
            let (shell, canary) = (written[0], written[1])
            #expect(ProcessTable.isAlive(canary, startTime: nil))
            let cancelled = ContinuousClock.now
            task.cancel()
            let result = try await task.value
            #expect(!result.status.isSuccess)
            #expect(!result.standardOutput.contains("unreachable"))
            #expect(!ProcessTable.isAlive(shell, startTime: nil))
            // The canary is not our child: it may linger a moment as a zombie of init's.
            for _ in 0..<200 where ProcessTable.isAlive(canary, startTime: nil) {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(!ProcessTable.isAlive(canary, startTime: nil), "the canary outlived the cancelled command")
            if ignoringSIGTERM {
                #expect(result.status == .signaled(SIGKILL))
                #expect(ContinuousClock.now - cancelled >= .milliseconds(450), "SIGKILL came before the grace")
            } else {
                #expect(result.status == .signaled(SIGTERM))
            }
        }
    }

    @Test func startReturnsAHandleWithOutputOnOnePipe() async throws {
        let child = try runner.start(
            Command("/bin/sh", ["-c", "cat; echo to-stderr >&2; exec sleep 30"]),
            options: StartOptions(input: .bytes(Array("input\n".utf8)), output: .pipe, grouping: .newProcessGroup))
        var said = ""
        for _ in 0..<400 where !said.contains("to-stderr") {
            said += String(decoding: child.readAvailableOutput(), as: UTF8.self)
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(said == "input\nto-stderr\n")
        #expect(child.poll() == nil)
        child.signalGroup(SIGTERM)
        #expect(await child.wait() == .signaled(SIGTERM))
    }
}
