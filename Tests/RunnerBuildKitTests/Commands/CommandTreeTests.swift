import ArgumentParser
import RunnerBuildKit
import Testing

/// The `runner-build` command tree.
@Suite struct CommandTreeTests {
    @Test func helpNamesTheTool() {
        #expect(RunnerBuildCommand.helpMessage().contains("runner-build"))
    }
}
