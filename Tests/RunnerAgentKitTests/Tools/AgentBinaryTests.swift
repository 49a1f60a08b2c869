import RunnerCore
import Testing

@testable import RunnerAgentKit

@Suite struct AgentBinaryTests {
    @Test func versionArgv() {
        #expect(
            AgentBinary(path: "/usr/local/lib/runner/releases/v1.3/bin/runner-agent").version().argv == [
                "/usr/local/lib/runner/releases/v1.3/bin/runner-agent", "--version",
            ])
    }
}
