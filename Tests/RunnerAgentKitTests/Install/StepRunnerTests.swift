import Logging
import RunnerCore
import Testing

@testable import RunnerAgentKit

/// ``StepRunner``: a step whose check still fails after it ran says why, when it can.
@Suite struct StepRunnerTests {
    static let runner = StepRunner(logger: Logger(label: "t")) { _ in }

    @Test func aStepThatStaysUndoneNamesItsProblem() async throws {
        let step = InstallStep(
            "mounts", "mount things", isDone: { () throws(RunnerError) in false }, apply: { () throws(RunnerError) in },
            problem: { () throws(RunnerError) in "/var/lib/runner/work is on a mount without nosuid" })
        let error = await #expect(throws: RunnerError.self) { try await Self.runner.run([step], dryRun: false) }
        #expect(error?.code == .commandFailed)
        #expect("\(error.map { "\($0)" } ?? "")".contains("mounts: ran but still: /var/lib/runner/work is on a mount"))
    }

    @Test func aStepWithoutAProblemReportsABug() async throws {
        let step = InstallStep(
            "x", "x", isDone: { () throws(RunnerError) in false }, apply: { () throws(RunnerError) in })
        let error = await #expect(throws: RunnerError.self) { try await Self.runner.run([step], dryRun: false) }
        #expect(error?.code == .internal)
    }
}
