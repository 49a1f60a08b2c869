import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

struct ServiceSettingsTests {
    let layout = HostLayout(root: "/nonexistent-root")
    let base = ["RUNNER_GITHUB_URL": "https://github.com/acme"]

    /// The settings `service` builds: the config model validates `values`, then the settings
    /// take its typed values.
    func settings(_ extra: [String: String], layout: HostLayout? = nil) throws -> ServiceSettings {
        let layout = layout ?? self.layout
        let config = try RunnerConfig(source: "config.env", values: base.merging(extra) { $1 })
            .validated(options: .init(secretFiles: layout, requireCredential: true))
        return try ServiceSettings(config, layout: layout)
    }

    @Test func defaults() throws {
        let s = try settings(["RUNNER_REGISTRATION_TOKEN": "T", "RUNNER_LABELS": " a, b "])
        #expect(s.user == "runner")
        #expect(s.user == ConfigKey.Defaults.user)
        #expect(s.workDirectory == layout.workDirectory)
        #expect(s.workDirectory == layout.path(ConfigKey.Defaults.workDirectory))
        #expect(s.requireJobContainer == false && s.group == nil && s.proxies.isEmpty)
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
        let config = RunnerConfig(source: "config.env", values: ["RUNNER_PAT": "p"])
        #expect(throws: RunnerError.self) { try ServiceSettings(config, layout: layout) }
    }

    /// What the config model checked is not checked again: the settings take its values as
    /// typed (a work directory under the layout, the proxies, the App's three keys).
    @Test func valuesComeFromTheTypedConfig() throws {
        let s = try settings([
            "RUNNER_PAT": "p", "RUNNER_WORK_DIR": "/srv/work", "RUNNER_GROUP": "appliances",
            "RUNNER_EPHEMERAL": "true", "HTTPS_PROXY": "http://proxy:3128", "RUNNER_REQUIRE_JOB_CONTAINER": "true",
        ])
        #expect(s.workDirectory == layout.path("/srv/work"))
        #expect(s.group == "appliances" && s.ephemeral && s.requireJobContainer)
        #expect(s.proxies == ["HTTPS_PROXY": "http://proxy:3128"])
        guard case .api(.pat(let pat)) = s.registration else {
            Issue.record("expected a PAT")
            return
        }
        #expect(pat.value == "p")
    }

    /// Plain http passes the config model (GHES may use it) but the service refuses it but
    /// for a loopback test server: tokens would travel in clear.
    @Test func plainHTTPOnlyToLoopback() throws {
        let error = #expect(throws: RunnerError.self) {
            try settings(["RUNNER_GITHUB_URL": "http://ghes.internal/acme", "RUNNER_PAT": "p"])
        }
        #expect(error?.problem.contains("plain http") == true)
        #expect(
            try settings(["RUNNER_GITHUB_URL": "http://127.0.0.1:8080/acme", "RUNNER_PAT": "p"]).target.scheme == "http"
        )
    }

    /// Secret files are read by the config model's ``SecretSource``: surrounding whitespace
    /// goes, an empty file is a configuration error naming it.
    @Test func secretFilesAreReadByTheConfigModel() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            try AtomicFile.write("  ghp_x \n\n", to: layout.path("/etc/runner/pat"), mode: 0o600)
            let s = try settings(["RUNNER_PAT_FILE": "/etc/runner/pat"], layout: layout)
            guard case .api(.pat(let pat)) = s.registration else {
                Issue.record("expected a PAT")
                return
            }
            #expect(pat.value == "ghp_x")
            try AtomicFile.write(" \n", to: layout.path("/etc/runner/pat"), mode: 0o600)
            let error = #expect(throws: RunnerError.self) {
                try settings(["RUNNER_PAT_FILE": "/etc/runner/pat"], layout: layout)
            }
            #expect(error?.code == .invalidConfig && error?.input == "/etc/runner/pat" && error?.problem == "is empty")
        }
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
        let config = try ConfigEnv.load(nil, layout: layout, for: .service)
        #expect(config.runnerName == "my-runner")
        let settings = try ServiceSettings(config, layout: layout)
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
