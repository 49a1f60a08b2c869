import RunnerCore
import Testing

@testable import RunnerAgentKit

@Suite struct VisudoTests {
    @Test func check() {
        #expect(
            Visudo().check("/etc/sudoers.d/x").argv == ["visudo", "--check", "--quiet", "--file", "/etc/sudoers.d/x"])
    }
}
