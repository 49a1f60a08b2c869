import RunnerCore
import Testing

@testable import RunnerAgentKit

@Suite struct SudoTests {
    @Test func nonInteractiveDropsTheEnvironment() {
        let command = Sudo().nonInteractive(
            Command("/usr/local/bin/ci-nspawn-run", ["stop", "rg-0123456789ab"], environment: ["K": "v"]))
        #expect(command.argv == ["sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "stop", "rg-0123456789ab"])
        #expect(command.environment.isEmpty)
    }

    @Test func mayRun() {
        #expect(
            Sudo().may("runner", run: "/usr/local/bin/ci-nspawn-run").argv == [
                "sudo", "--non-interactive", "--list", "--other-user", "runner", "/usr/local/bin/ci-nspawn-run",
            ])
    }
}
