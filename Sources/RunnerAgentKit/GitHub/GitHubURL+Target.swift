import RunnerCore

/// Where a runner registers: the config model's parsed `RUNNER_GITHUB_URL` (a repository, an
/// organization or an enterprise, on github.com, a GHE.com tenant or GitHub Enterprise Server).
public typealias GitHubTarget = GitHubURL

extension GitHubURL {
    /// Parses `url` as the config validator does, and refuses plain http to anything but a
    /// loopback test server (tokens would travel in clear).
    public init(url raw: String, key: String = "RUNNER_GITHUB_URL") throws(RunnerError) {
        let fix =
            "set \(key) to https://github.com/OWNER/REPO, https://github.com/ORG or "
            + "https://github.com/enterprises/NAME (or the same on your GitHub Enterprise Server)"
        guard let parsed = GitHubURL(raw) else {
            throw RunnerError(
                .invalidConfig, input: key,
                problem: "'\(raw)' names neither a repository, an organization nor an enterprise", fix: fix)
        }
        try parsed.checkTransport(key: key)
        self = parsed
    }

    /// Refuses plain http to anything but a loopback test server (tokens would travel in
    /// clear): the agent's rule on top of the config model's, which accepts http for GHES.
    public func checkTransport(key: String = "RUNNER_GITHUB_URL") throws(RunnerError) {
        if scheme == "http" && !Self.isLoopback(host) {
            throw RunnerError(
                .invalidConfig, input: key,
                problem: "'\(description)' uses plain http, which would send tokens in clear",
                fix: "use https")
        }
    }

    /// The URL as `config.sh --url` takes it, without a trailing slash.
    public var url: String { description }
    /// The REST API root (``apiBaseURL``).
    public var apiBase: String { apiBaseURL }
    /// The API path prefix of the runner endpoints (``apiScopePath``).
    public var runnersPath: String { apiScopePath }

    static func isLoopback(_ hostAndPort: String) -> Bool {
        let host = hostAndPort.split(separator: ":").first.map(String.init) ?? hostAndPort
        return host == "127.0.0.1" || host == "localhost" || hostAndPort.hasPrefix("[::1]")
    }
}
