import RunnerCore
import Testing

@testable import RunnerAgentKit

@Suite struct SetprivTests {
    @Test func asUserKeepsTheCommandsContext() {
        let command = Setpriv().asUser(
            uid: 999, gid: 998,
            Command("/opt/actions-runner/run.sh", [], environment: ["K": "v"], workingDirectory: "/opt/actions-runner"))
        #expect(
            command.argv == [
                "setpriv", "--reuid=999", "--regid=998", "--init-groups", "--", "/opt/actions-runner/run.sh",
            ])
        #expect(command.workingDirectory == "/opt/actions-runner")
        #expect(command.environment == ["K": "v"])
    }
}
