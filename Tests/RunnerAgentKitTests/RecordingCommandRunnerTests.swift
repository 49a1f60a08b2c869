import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

#if canImport(Glibc)
    import Glibc
#endif

/// The recording runner's ``RecordingCommandRunner/start(_:options:)``: long-lived children as
/// scripted processes, so code that starts them runs in tests without spawning anything.
@Suite struct RecordingCommandRunnerTests {
    @Test func startRecordsTheCommandAndReturnsAScriptedProcess() async throws {
        let runner = RecordingCommandRunner()
        let options = StartOptions(input: .bytes([1, 2]), output: .pipe, grouping: .newProcessGroup)
        // Default: already exited 0.
        let plain = try runner.start(Command("/usr/bin/true"), options: StartOptions())
        #expect(plain.poll() == .exited(0))
        // Scripted: output to read, runs until SIGINT reaches its group.
        runner.answerStart("run.sh") {
            ScriptedProcess(pid: 4242, output: Array("Listening for Jobs\n".utf8), ending: .onSignal([SIGINT]))
        }
        let child = try runner.start(Command("/runner/run.sh", ["--once"]), options: options)
        #expect(child.pid == 4242)
        #expect(String(decoding: child.readAvailableOutput(), as: UTF8.self) == "Listening for Jobs\n")
        #expect(child.readAvailableOutput().isEmpty)
        #expect(child.poll() == nil)
        child.signalGroup(SIGTERM)
        #expect(child.poll() == nil, "only SIGINT ends it")
        child.signalGroup(SIGINT)
        #expect(await child.wait() == .signaled(SIGINT))

        let started = runner.started
        #expect(started.map(\.command.argv) == [["/usr/bin/true"], ["/runner/run.sh", "--once"]])
        #expect(started.last?.options == options)
        #expect(started.last?.process.groupSignals == [SIGTERM, SIGINT])
        #expect(runner.commands.isEmpty, "started commands are not run commands")
    }

    @Test func aScriptedProcessEndsWhenTheTestSays() async throws {
        let process = ScriptedProcess(ending: .onSignal([]))
        process.signal(SIGTERM)
        #expect(process.poll() == nil)
        Task {
            try await Task.sleep(for: .milliseconds(20))
            process.exit(.exited(3))
        }
        #expect(await process.wait() == .exited(3))
        #expect(process.signals == [SIGTERM])
        #expect(!process.signal(SIGKILL), "an ended process is gone")
    }

    /// The hook's step through `sudo ci-nspawn-run exec` (no relay for the guest): started in a
    /// process group of its own, its environment as JSON on stdin, its status returned.
    @Test func theHooksStepThroughSudoIsStartedThroughTheRunner() async throws {
        try await withTemporaryDirectory("recording-start") { dir in
            let runner = RecordingCommandRunner()
            runner.answerStart("sudo") { ScriptedProcess(status: .exited(3)) }
            let guests = HelperGuests(helper: "/usr/local/sbin/ci-nspawn-run", layout: dir.layout, runner: runner)
            let status = try await guests.exec(
                "rg-0123456789ab", command: ["make", "test"], environment: ["CI": "true"], workingDirectory: "/__w")
            #expect(status == .exited(3))
            let started = try #require(runner.started.first)
            #expect(
                started.command.argv == [
                    "sudo", "-n", "--", "/usr/local/sbin/ci-nspawn-run", "exec", "rg-0123456789ab", "--env-stdin",
                    "--cwd", "/__w", "--", "make", "test",
                ])
            #expect(started.options.output == .inherit)
            #expect(started.options.grouping == .newProcessGroup)
            #expect(started.options.input == .bytes(Array(#"{"CI":"true"}"#.utf8)))
        }
    }
}
