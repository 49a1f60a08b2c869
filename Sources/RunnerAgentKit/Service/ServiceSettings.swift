import FoundationEssentials
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// What `runner-agent service` needs from `config.env`, validated.
public struct ServiceSettings: Sendable {
    /// Where a registration comes from.
    public enum Registration: Sendable {
        /// A registration token given in the configuration (valid one hour from its minting).
        case token(Secret)
        /// A JIT configuration given in the configuration: one job, then the service stops.
        case jitConfig(Secret)
        /// A PAT or App that mints registration tokens (or, when ephemeral, JIT configurations).
        case api(GitHubCredential)
    }

    public var target: GitHubTarget
    public var name: String
    public var labels: [String]
    public var group: String?
    public var ephemeral: Bool
    public var noDefaultLabels: Bool
    /// `RUNNER_WORK_DIR` (or its default) under the layout's root.
    public var workDirectory: String
    public var user: String
    public var registration: Registration
    public var requireJobContainer: Bool
    /// `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` when set.
    public var proxies: [String: String]

    /// The settings a config gives, from its typed accessors. `config` comes validated from
    /// ``ConfigEnv/load(_:layout:for:)`` (every value's form, the combinations, exactly one
    /// credential, `*_FILE` secrets 0600), which is not checked again here; what is added is the
    /// agent's own rule on the URL (no plain http but to loopback) and reading the secret files
    /// (``SecretSource/read(layout:)``). Host paths are joined onto `layout`.
    public init(_ config: RunnerConfig, layout: HostLayout) throws(RunnerError) {
        guard let url = config.githubURL else {
            throw RunnerError(
                .invalidConfig, input: ConfigKey.githubURL.name, problem: "is not set",
                fix: "set RUNNER_GITHUB_URL in \(layout.configFile) to the repository, organization or enterprise URL")
        }
        try url.checkTransport(key: ConfigKey.githubURL.name)
        target = url
        name = config.runnerName ?? ServiceSettings.hostname()
        labels = config.labels
        group = config.group
        ephemeral = config.ephemeral
        noDefaultLabels = config.noDefaultLabels
        workDirectory = layout.path(config.workDirectory)
        user = config.user
        requireJobContainer = config.requireJobContainer
        var proxies: [String: String] = [:]
        for key in [ConfigKey.httpProxy, .httpsProxy, .noProxy] { proxies[key.name] = config.value(key) }
        self.proxies = proxies
        switch config.credential {
        case .registrationToken(let source):
            registration = .token(Secret(try source.read(layout: layout)))
        case .jitConfig(let source):
            registration = .jitConfig(Secret(try source.read(layout: layout)))
        case .pat(let source):
            registration = .api(.pat(Secret(try source.read(layout: layout))))
        case .app(let appID, let installationID, let privateKeyFile):
            let key = try SecretSource.file(privateKeyFile).read(layout: layout)
            registration = .api(
                .app(
                    appID: appID, installationID: installationID, privateKey: Secret(key),
                    keyInput: ConfigKey.appPrivateKeyFile.name))
        case nil:
            throw RunnerError(
                .invalidConfig, input: layout.configFile, problem: "no credential is set",
                fix: "set exactly one of RUNNER_REGISTRATION_TOKEN[_FILE], RUNNER_JIT_CONFIG[_FILE], "
                    + "RUNNER_PAT[_FILE] or RUNNER_APP_ID with RUNNER_APP_INSTALLATION_ID and RUNNER_APP_PRIVATE_KEY_FILE"
            )
        }
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "runner" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "runner" : name
    }
}
