import RunnerCore
import Testing

@Suite("Errors")
struct RunnerErrorTests {
    @Test func namesInputProblemAndFix() {
        let error = RunnerError(.invalidInput, input: "--version 1.2", problem: "is not vMAJOR.MINOR", fix: "use v1.2")
        #expect(error.description == "--version 1.2: is not vMAJOR.MINOR\nfix: use v1.2")
    }

    @Test func commandFailureKeepsABoundedStderrTail() {
        let stderr = (1...50).map { "line \($0)" }.joined(separator: "\n")
        let error = RunnerError.commandFailed(
            Command("apt-get", ["install", "nope"]), status: .exited(100), stderr: stderr)
        #expect(error.code == .commandFailed)
        #expect(error.problem.contains("exit status 100"))
        #expect(error.problem.contains("line 50"))
        #expect(!error.problem.contains("line 30\n"))
    }
}
