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
    public var workDirectory: String
    public var user: String
    public var registration: Registration
    public var requireJobContainer: Bool
    /// `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` when set.
    public var proxies: [String: String]

    /// Validates `values` (config.env's keys). `_FILE` variants are read from disk.
    public init(values: [String: String], layout: HostLayout) throws(RunnerError) {
        func value(_ key: String) -> String? {
            guard let raw = values[key]?.trimmedWhitespace, !raw.isEmpty else { return nil }
            return raw
        }
        func bool(_ key: String) throws(RunnerError) -> Bool {
            switch value(key) {
            case nil, "false": return false
            case "true": return true
            case let other?:
                throw RunnerError(
                    .invalidConfig, input: key, problem: "'\(other)' is not a boolean",
                    fix: "set \(key)=true or \(key)=false")
            }
        }
        func secret(_ key: String) throws(RunnerError) -> Secret? {
            let fileKey = key + "_FILE"
            if value(key) != nil && value(fileKey) != nil {
                throw RunnerError(
                    .invalidConfig, input: key, problem: "both \(key) and \(fileKey) are set", fix: "keep one of them")
            }
            if let direct = value(key) { return Secret(direct) }
            guard let path = value(fileKey) else { return nil }
            let text = try ServiceSettings.readSecretFile(layout.path(path), key: fileKey)
            return Secret(text)
        }

        guard let url = value("RUNNER_GITHUB_URL") else {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_GITHUB_URL", problem: "is not set",
                fix: "set RUNNER_GITHUB_URL in \(layout.configFile) to the repository, organization or enterprise URL")
        }
        target = try GitHubTarget(url: url)
        name = value("RUNNER_NAME") ?? ServiceSettings.hostname()
        labels = (value("RUNNER_LABELS") ?? "").split(separator: ",").map { $0.trimmedWhitespace }.filter {
            !$0.isEmpty
        }
        group = value("RUNNER_GROUP")
        ephemeral = try bool("RUNNER_EPHEMERAL")
        noDefaultLabels = try bool("RUNNER_NO_DEFAULT_LABELS")
        if noDefaultLabels && labels.isEmpty {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_NO_DEFAULT_LABELS", problem: "is true but RUNNER_LABELS is empty",
                fix: "set RUNNER_LABELS, or RUNNER_NO_DEFAULT_LABELS=false")
        }
        workDirectory = value("RUNNER_WORK_DIR") ?? layout.workDirectory
        user = value("RUNNER_USER") ?? "runner"
        requireJobContainer = try bool("RUNNER_REQUIRE_JOB_CONTAINER")
        var proxies: [String: String] = [:]
        for key in ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"] { proxies[key] = value(key) }
        self.proxies = proxies

        let token = try secret("RUNNER_REGISTRATION_TOKEN")
        let jit = try secret("RUNNER_JIT_CONFIG")
        let pat = try secret("RUNNER_PAT")
        let appID = value("RUNNER_APP_ID")
        var given: [String] = []
        if token != nil { given.append("RUNNER_REGISTRATION_TOKEN") }
        if jit != nil { given.append("RUNNER_JIT_CONFIG") }
        if pat != nil { given.append("RUNNER_PAT") }
        if appID != nil { given.append("RUNNER_APP_ID") }
        guard given.count == 1 else {
            throw RunnerError(
                .invalidConfig, input: layout.configFile,
                problem: given.isEmpty
                    ? "no credential is set" : "more than one credential is set (\(given.joined(separator: ", ")))",
                fix: "set exactly one of RUNNER_REGISTRATION_TOKEN[_FILE], RUNNER_JIT_CONFIG[_FILE], "
                    + "RUNNER_PAT[_FILE] or RUNNER_APP_ID with RUNNER_APP_PRIVATE_KEY_FILE")
        }
        if let token {
            registration = .token(token)
        } else if let jit {
            registration = .jitConfig(jit)
        } else if let pat {
            registration = .api(.pat(pat))
        } else {
            guard let keyPath = value("RUNNER_APP_PRIVATE_KEY_FILE") else {
                throw RunnerError(
                    .invalidConfig, input: "RUNNER_APP_PRIVATE_KEY_FILE", problem: "is not set but RUNNER_APP_ID is",
                    fix: "point RUNNER_APP_PRIVATE_KEY_FILE at the App's PEM private key (0600, root)")
            }
            let key = try ServiceSettings.readSecretFile(layout.path(keyPath), key: "RUNNER_APP_PRIVATE_KEY_FILE")
            registration = .api(
                .app(
                    appID: appID ?? "", installationID: value("RUNNER_APP_INSTALLATION_ID"), privateKey: Secret(key),
                    keyInput: "RUNNER_APP_PRIVATE_KEY_FILE"))
        }
    }

    static func readSecretFile(_ path: String, key: String) throws(RunnerError) -> String {
        let bytes: [UInt8]
        do {
            bytes = try FilePaths.read(path)
        } catch {
            throw RunnerError(
                .invalidConfig, input: key, problem: "cannot read \(path)",
                fix: "create the file (0600, root) or fix \(key)")
        }
        let text = String(decoding: bytes, as: UTF8.self).trimmedWhitespace
        guard !text.isEmpty else {
            throw RunnerError(.invalidConfig, input: key, problem: "\(path) is empty", fix: "put the secret in \(path)")
        }
        return text
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "runner" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "runner" : name
    }
}
