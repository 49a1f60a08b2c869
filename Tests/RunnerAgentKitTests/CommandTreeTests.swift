import ArgumentParser
import RunnerAgentKit
import Testing

@Test func helpNamesTheTool() {
    #expect(RunnerAgentCommand.helpMessage().contains("runner-agent"))
}
