import ArgumentParser
import RunnerAgentKit
import Testing

/// The `runner-agent` command tree.
@Suite struct CommandTreeTests {
    @Test func helpNamesTheTool() {
        #expect(RunnerAgentCommand.helpMessage().contains("runner-agent"))
    }
}
