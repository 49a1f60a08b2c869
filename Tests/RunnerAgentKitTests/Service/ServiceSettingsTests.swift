import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

struct ServiceSettingsTests {
    let layout = HostLayout(root: "/nonexistent-root")
    let base = ["RUNNER_GITHUB_URL": "https://github.com/acme"]

    func settings(_ extra: [String: String]) throws -> ServiceSettings {
        try ServiceSettings(values: base.merging(extra) { $1 }, layout: layout)
    }

    @Test func defaults() throws {
        let s = try settings(["RUNNER_REGISTRATION_TOKEN": "T", "RUNNER_LABELS": " a, b ,,"])
        #expect(s.user == "runner")
        #expect(s.workDirectory == layout.workDirectory)
        #expect(s.labels == ["a", "b"])
        #expect(!s.ephemeral)
        guard case .token(let token) = s.registration else {
            Issue.record("expected a token")
            return
        }
        #expect(token.value == "T")
    }

    @Test(arguments: [
        [String: String](), ["RUNNER_PAT": "p", "RUNNER_REGISTRATION_TOKEN": "t"],
        ["RUNNER_PAT": "p", "RUNNER_PAT_FILE": "/x"], ["RUNNER_PAT": "p", "RUNNER_EPHEMERAL": "yes"],
        ["RUNNER_APP_ID": "1"], ["RUNNER_PAT_FILE": "/nonexistent/pat"],
        ["RUNNER_PAT": "p", "RUNNER_NO_DEFAULT_LABELS": "true"],
    ])
    func invalidConfigurations(extra: [String: String]) {
        let error = #expect(throws: RunnerError.self) { try settings(extra) }
        #expect(error?.code == .invalidConfig)
        #expect(error?.fix != nil)
    }

    @Test func missingURL() {
        #expect(throws: RunnerError.self) { try ServiceSettings(values: ["RUNNER_PAT": "p"], layout: layout) }
    }

    @Test func configIsLoadedThroughTheConfigModel() throws {
        let directory = try TemporaryDirectory("config")
        defer { directory.remove() }
        let layout = directory.layout
        try AtomicFile.write(
            """
            # comment
            RUNNER_GITHUB_URL=https://github.com/acme
            RUNNER_NAME="my-runner"
            RUNNER_PAT_FILE=/etc/runner/pat
            """, to: layout.configFile, mode: 0o600)
        try AtomicFile.write("ghp_x\n", to: layout.path("/etc/runner/pat"), mode: 0o644)
        let error = #expect(throws: RunnerError.self) { try ConfigEnv.load(nil, layout: layout, for: .service) }
        #expect(error?.description.contains("0600") == true || error?.description.contains("600") == true)
        try AtomicFile.write("ghp_x\n", to: layout.path("/etc/runner/pat"), mode: 0o600)
        let values = try ConfigEnv.load(nil, layout: layout, for: .service)
        #expect(values["RUNNER_NAME"] == "my-runner")
        let settings = try ServiceSettings(values: values, layout: layout)
        guard case .api(.pat(let pat)) = settings.registration else {
            Issue.record("expected a PAT")
            return
        }
        #expect(pat.value == "ghp_x")
        try AtomicFile.write(
            "RUNNER_GITHUB_URL=https://github.com/acme\nRUNNER_COLOUR=blue\n", to: layout.configFile, mode: 0o600)
        #expect(throws: RunnerError.self) { try ConfigEnv.load(nil, layout: layout, for: .install) }
    }
}
