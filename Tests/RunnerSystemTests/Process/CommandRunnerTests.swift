import RunnerCore
import RunnerSystem
import Testing

@Suite("Running commands")
struct CommandRunnerTests {
    let runner = SystemCommandRunner()

    @Test func nonZeroExitIsDataUntilChecked() async throws {
        let command = Command("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        let result = try await runner.run(command)
        #expect(result.status == .exited(3))
        #expect(result.standardOutput == "out\n")
        #expect(result.standardError == "err\n")
        #expect(throws: RunnerError.self) { try result.checked(command) }
    }

    @Test func inputEnvironmentAndDirectoryReachTheChild() async throws {
        let command = Command(
            "/bin/sh", ["-c", "read x; echo \"$x $GREETING $(pwd)\""],
            environment: ["GREETING": "hello"], workingDirectory: "/usr"
        )
        let out = try await runner.output(command, input: Array("in\n".utf8))
        #expect(out == "in hello /usr\n")
    }

    @Test func captureKeepsTheTailWithinTheLimit() async throws {
        let command = Command("/bin/sh", ["-c", "seq 1 100000"])
        let result = try await runner.run(command, input: nil, output: .capture(limit: 1000))
        #expect(result.standardOutput.utf8.count <= 1000)
        #expect(result.standardOutput.hasSuffix("99999\n100000\n"))
    }

    @Test func missingProgramIsAClearError() async throws {
        await #expect(throws: RunnerError.self) {
            try await runner.run(Command("/nonexistent/tool"))
        }
    }
}
