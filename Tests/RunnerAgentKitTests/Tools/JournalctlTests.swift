import RunnerCore
import Testing

@testable import RunnerAgentKit

@Suite struct JournalctlTests {
    @Test func lastLines() {
        #expect(
            Journalctl().lastLines(unit: "runner-install.service", count: 50).argv == [
                "journalctl", "--no-pager", "--quiet", "--output=cat", "--lines=50", "--unit=runner-install.service",
            ])
    }
}
