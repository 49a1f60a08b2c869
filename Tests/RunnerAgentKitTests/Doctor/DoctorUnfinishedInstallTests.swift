import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

/// Issue #12, defect 1: an install that stopped on a configuration error (runner-install.service
/// exited 78 and does not retry) is reported with its cause; other failures as retried.
@Suite struct DoctorUnfinishedInstallTests {
    func marker(status: String, journal: String, systemd: Bool = true) async throws -> (Doctor.Finding, [[String]]) {
        try await withTemporaryDirectory("doc") { dir in
            let runner = RecordingCommandRunner()
            runner.answer(
                "systemctl",
                with: CommandResult(
                    status: .exited(0),
                    standardOutput: "ExecMainStatus=\(status)\nActiveState=failed\nResult=exit-code\n"))
            runner.answer("journalctl", with: CommandResult(status: .exited(0), standardOutput: journal))
            var doctor = Doctor(layout: dir.layout, commandRunner: runner, bootCheck: false)
            doctor.systemdIsPID1 = systemd
            let finding = await doctor.marker()
            return (finding, runner.commands.map(\.argv))
        }
    }

    static let journal = """
        bootstrap: bundle verified (sha256 ab…); running /var/cache/runner/runner-agent-v1.2 install --bundle …
        runner-agent: error: /etc/runner/config.env: 1 problem: RUNNER_VERSION is not set
        """

    @Test func exitStatus78IsAConfigurationErrorWithItsCause() async throws {
        let (finding, argv) = try await marker(status: "78", journal: Self.journal)
        #expect(finding.status == .problem)
        #expect(finding.detail.contains("runner-install.service failed with exit status 78 (EX_CONFIG)"))
        #expect(finding.detail.contains("does not retry"))
        #expect(
            finding.detail.hasSuffix(
                ": runner-agent: error: /etc/runner/config.env: 1 problem: RUNNER_VERSION is not set"))
        #expect(finding.fix?.contains("runner-agent config check") == true)
        #expect(finding.fix?.contains("systemctl restart runner-install.service") == true)
        #expect(
            argv == [
                [
                    "systemctl", "show", "--property=ExecMainStatus", "--property=ActiveState", "--property=Result",
                    "--",
                    "runner-install.service",
                ],
                ["journalctl", "--no-pager", "--quiet", "--output=cat", "--lines=50", "--unit=runner-install.service"],
            ])
    }

    @Test func anotherStatusIsRetried() async throws {
        let (finding, _) = try await marker(status: "1", journal: "bootstrap: error: could not download https://x\n")
        #expect(finding.detail.contains("the last attempt of runner-install.service exited 1; it retries every 30 s"))
        #expect(finding.detail.hasSuffix(": bootstrap: error: could not download https://x"))
    }

    @Test func withoutAFailureOrSystemdTheFindingIsTheGenericOne() async throws {
        for (status, systemd) in [("0", true), ("78", false)] {
            let (finding, argv) = try await marker(status: status, journal: "", systemd: systemd)
            #expect(finding.status == .problem)
            #expect(finding.detail.hasSuffix("is missing: the install has not finished"))
            #expect(argv.allSatisfy { $0.first != "journalctl" })
        }
    }
}
