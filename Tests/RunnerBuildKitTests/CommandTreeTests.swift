import ArgumentParser
import RunnerBuildKit
import Testing

@Test func helpNamesTheTool() {
    #expect(RunnerBuildCommand.helpMessage().contains("runner-build"))
}
