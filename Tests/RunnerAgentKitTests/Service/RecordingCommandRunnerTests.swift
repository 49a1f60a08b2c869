import FoundationEssentials
import Logging
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

    /// A supervisor on a recording runner: the GitHub runner is started, not spawned.
    static func supervisor(_ runner: RecordingCommandRunner, in dir: TemporaryDirectory) throws -> RunnerSupervisor {
        let layout = dir.layout
        for script in ["run.sh", "config.sh"] {
            try AtomicFile.write("#!/bin/sh\n", to: layout.runnerDirectory + "/" + script, mode: 0o755)
        }
        let settings = try ServiceSettings(
            RunnerConfig(
                source: layout.configFile,
                values: [
                    "RUNNER_GITHUB_URL": "https://github.example/acme/widgets", "RUNNER_NAME": "appliance-1",
                    "RUNNER_USER": currentUserName, "RUNNER_JIT_CONFIG": "JITCONFIGVALUE",
                ]), layout: layout)
        var timing = ServiceTiming()
        timing.stopGrace = .seconds(2)
        return RunnerSupervisor(
            settings: settings, layout: layout, commandRunner: runner, logger: Logger(label: "test"), timing: timing,
            output: { _ in })
    }

    /// The supervisor's GitHub runner: `run.sh` behind the JIT prelude, the configuration on
    /// stdin, its output on one pipe, its own process group, an environment of its own.
    @Test func theSupervisorStartsTheRunnerThroughTheRunner() async throws {
        let dir = try TemporaryDirectory("recording-supervisor")
        defer { dir.remove() }
        let runner = RecordingCommandRunner()
        runner.answerStart(when: { $0.argv.contains { $0.hasSuffix("/run.sh") } }) {
            ScriptedProcess(output: Array("√ Connected to GitHub\n".utf8), status: .exited(0))
        }
        let supervisor = try Self.supervisor(runner, in: dir)
        #expect(try await supervisor.run() == .stopped)
        let started = try #require(runner.started.first)
        #expect(runner.started.count == 1, "a given JIT configuration runs one job")
        #expect(started.command.executable == "/bin/sh")
        #expect(started.command.argv.last == dir.layout.runnerDirectory + "/run.sh")
        #expect(started.options.input == .bytes(Array("JITCONFIGVALUE\n".utf8)))
        #expect(started.options.output == .pipe)
        #expect(started.options.grouping == .newProcessGroup)
        #expect(started.command.clearsEnvironment)
        #expect(started.command.environment["LANG"] == "C.UTF-8")
        #expect(started.command.environment["RUNNER_JIT_CONFIG"] == nil)
    }

    /// A stop request while the runner idles: SIGINT to its group, and SIGKILL for what the
    /// group still holds once it ended.
    @Test func aStopReachesTheRunnersGroup() async throws {
        let dir = try TemporaryDirectory("recording-stop")
        defer { dir.remove() }
        let runner = RecordingCommandRunner()
        runner.answerStart(when: { $0.argv.contains { $0.hasSuffix("/run.sh") } }) {
            ScriptedProcess(pid: 4242, ending: .onSignal([SIGINT]))
        }
        let supervisor = try Self.supervisor(runner, in: dir)
        let run = Task { try await supervisor.run() }
        for _ in 0..<500 where runner.started.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
        supervisor.requestStop()
        #expect(try await run.value == .stopped)
        let process = try #require(runner.started.first?.process)
        #expect(process.groupSignals == [SIGINT, SIGKILL])
        #expect(process.poll() == .signaled(SIGINT))
    }
}
