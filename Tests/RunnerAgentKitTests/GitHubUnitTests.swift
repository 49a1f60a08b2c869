import Crypto
import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing
import _CryptoExtras

@testable import RunnerAgentKit

struct GitHubTargetTests {
    @Test(arguments: [
        ("https://github.com/acme/widgets", "https://api.github.com", "repos/acme/widgets"),
        ("https://github.com/acme/", "https://api.github.com", "orgs/acme"),
        ("https://github.com/enterprises/big", "https://api.github.com", "enterprises/big"),
        ("https://ghes.example.com/acme/widgets", "https://ghes.example.com/api/v3", "repos/acme/widgets"),
        ("https://ghes.example.com/enterprises/big", "https://ghes.example.com/api/v3", "enterprises/big"),
        ("https://tenant.ghe.com/acme", "https://api.tenant.ghe.com", "orgs/acme"),
        ("http://127.0.0.1:8080/acme", "http://127.0.0.1:8080/api/v3", "orgs/acme"),
    ])
    func parsesScopeAndAPIBase(url: String, api: String, path: String) throws {
        let target = try GitHubTarget(url: url)
        #expect(target.apiBase == api)
        #expect(target.runnersPath == path)
        #expect(!target.url.hasSuffix("/"))
    }

    @Test(arguments: [
        "github.com/acme", "ftp://github.com/acme", "https://github.com", "https://github.com/a/b/c",
        "http://github.com/acme", "https://github.com/../x", "https://user@github.com/acme", "https://github.com/a b",
    ])
    func rejectsBadURLs(url: String) {
        #expect(throws: RunnerError.self) { try GitHubTarget(url: url) }
    }
}

struct AppJWTTests {
    @Test func jwtIsRS256SignedAndVerifiesWithThePublicKey() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let jwt = try AppJWT(appID: "123", privateKeyPEM: Secret(key.pemRepresentation), keyInput: "key").token(
            now: 1_700_000_000)
        let parts = jwt.value.split(separator: ".").map(String.init)
        try #require(parts.count == 3)
        #expect(decode(parts[0]) == #"{"alg":"RS256","typ":"JWT"}"#)
        #expect(decode(parts[1]) == #"{"iat":1699999940,"exp":1700000540,"iss":"123"}"#)
        let signature = _RSA.Signing.RSASignature(rawRepresentation: try #require(bytes(parts[2])))
        #expect(
            key.publicKey.isValidSignature(
                signature, for: Array((parts[0] + "." + parts[1]).utf8), padding: .insecurePKCS1v1_5))
        #expect(!jwt.value.contains("=") && !jwt.value.contains("+") && !jwt.value.contains("/"))
    }

    @Test func badKeysAndIDsAreConfigurationErrors() throws {
        #expect(throws: RunnerError.self) {
            try AppJWT(appID: "123", privateKeyPEM: Secret("not a key"), keyInput: "RUNNER_APP_PRIVATE_KEY_FILE")
        }
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        #expect(throws: RunnerError.self) {
            try AppJWT(appID: "12 3", privateKeyPEM: Secret(key.pemRepresentation), keyInput: "k")
        }
    }

    func bytes(_ base64url: String) -> [UInt8]? {
        var text = base64url.replacing("-", with: "+").replacing("_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text).map { [UInt8]($0) }
    }

    func decode(_ base64url: String) -> String? {
        bytes(base64url).map { String(decoding: $0, as: UTF8.self) }
    }
}

struct GitHubAPIErrorTests {
    func api(status: Int, body: String = #"{"message":"Bad credentials"}"#) throws -> (
        GitHubAPI, RecordingCommandRunner
    ) {
        let runner = RecordingCommandRunner()
        runner.answer("curl", with: CommandResult(status: .exited(0), standardOutput: body + "\n\(status)"))
        let api = GitHubAPI(
            target: try GitHubTarget(url: "https://github.com/acme/widgets"), runner: runner, logger: Logger(label: "t")
        )
        return (api, runner)
    }

    @Test(arguments: [
        (401, RunnerError.Code.invalidConfig), (403, .invalidConfig), (404, .invalidConfig), (422, .invalidConfig),
        (500, .network), (429, .network),
    ])
    func httpFailuresBecomeClearErrors(status: Int, code: RunnerError.Code) async throws {
        let (api, runner) = try api(status: status)
        let error = await #expect(throws: RunnerError.self) {
            _ = try await api.registrationToken(using: .pat(Secret("ghp_x")))
        }
        #expect(error?.code == code)
        #expect(error?.problem.contains("HTTP \(status)") == true)
        #expect(error?.fix != nil)
        let command = try #require(runner.commands.first)
        #expect(command.argv.last == "https://api.github.com/repos/acme/widgets/actions/runners/registration-token")
        #expect(!command.argv.joined().contains("ghp_x"))
    }

    @Test func transportFailuresAreNetworkErrors() async throws {
        let runner = RecordingCommandRunner()
        runner.answer("curl", with: CommandResult(status: .exited(28), standardError: "curl: (28) timed out\n"))
        let api = GitHubAPI(
            target: try GitHubTarget(url: "https://github.com/acme"), runner: runner, logger: Logger(label: "t"))
        let error = await #expect(throws: RunnerError.self) {
            _ = try await api.registrationToken(using: .pat(Secret("ghp_x")))
        }
        #expect(error?.code == .timeout)
        #expect(error.map { ServiceExit($0) } == .unavailable)
    }

    @Test func appsCannotRegisterEnterpriseRunners() async throws {
        let (api0, _) = try api(status: 201, body: #"{"token":"x"}"#)
        var api = api0
        api.target = try GitHubTarget(url: "https://github.com/enterprises/big")
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let error = await #expect(throws: RunnerError.self) {
            _ = try await api.registrationToken(
                using: .app(appID: "1", installationID: "2", privateKey: Secret(key.pemRepresentation), keyInput: "k"))
        }
        #expect(error?.fix?.contains("manage_runners:enterprise") == true)
    }
}

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
