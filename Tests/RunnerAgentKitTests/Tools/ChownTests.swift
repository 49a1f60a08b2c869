import RunnerCore
import Testing

@testable import RunnerAgentKit

@Suite struct ChownTests {
    @Test func recursive() {
        #expect(
            Chown().recursive(uid: 5, gid: 6, "/opt/x").argv == ["chown", "-R", "--no-dereference", "5:6", "/opt/x"])
    }
}
