import RunnerCore
import Testing

@testable import RunnerAgentKit

/// Issue #12, defect 10: a config.env with `KEY=value # note` is valid, but the doctor warns.
@Suite struct DoctorConfigWarningTests {
    @Test func aHashAfterAValueIsAWarning() throws {
        let text = "RUNNER_GITHUB_URL=https://github.com/a/b\nRUNNER_WORK_DIR=/var/lib/runner/work # not a comment\n"
        let config = try RunnerConfig.parse(Array(text.utf8), source: "c.env", options: .syntax)
        let finding = Doctor.configFinding("/etc/runner/config.env", warnings: config.warnings)
        #expect(finding.status == .warning)
        #expect(
            finding.detail.hasPrefix(
                "/etc/runner/config.env is valid, but: /etc/runner/config.env:2: warning: RUNNER_WORK_DIR: the unquoted"
                    + " value contains ' #'"))
        #expect(finding.rendered.contains("fix: edit /etc/runner/config.env"))
        #expect(Doctor.configFinding("/etc/runner/config.env", warnings: []).status == .ok)
    }
}
