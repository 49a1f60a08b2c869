import RunnerCore

/// Where a runner registers: a repository, an organization or an enterprise, on github.com,
/// a GHE.com tenant or a GitHub Enterprise Server, parsed from `RUNNER_GITHUB_URL`.
public struct GitHubTarget: Sendable, Hashable, CustomStringConvertible {
    /// The level a runner is registered at.
    public enum Scope: Sendable, Hashable {
        case repository(owner: String, name: String)
        case organization(String)
        case enterprise(String)
    }

    /// The URL as given (without a trailing slash): what `config.sh --url` takes.
    public let url: String
    /// `https` or `http` (http only for a loopback test server).
    public let scheme: String
    /// Host, with the port when one was given.
    public let host: String
    public let scope: Scope

    /// Parses `https://github.com/OWNER/REPO`, `https://github.com/ORG`,
    /// `https://github.com/enterprises/ENTERPRISE` or the same paths on another host.
    public init(url raw: String, key: String = "RUNNER_GITHUB_URL") throws(RunnerError) {
        var text = raw
        while text.hasSuffix("/") { text.removeLast() }
        let fix =
            "set \(key) to https://github.com/OWNER/REPO, https://github.com/ORG or "
            + "https://github.com/enterprises/NAME (or the same on your GitHub Enterprise Server)"
        let scheme: String
        if text.hasPrefix("https://") {
            scheme = "https"
        } else if text.hasPrefix("http://") {
            scheme = "http"
        } else {
            throw RunnerError(.invalidConfig, input: key, problem: "'\(raw)' is not an https URL", fix: fix)
        }
        let rest = text.dropFirst(scheme.count + 3)
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let host = parts.first, !host.isEmpty, !host.contains("@"), !host.contains("?") else {
            throw RunnerError(.invalidConfig, input: key, problem: "'\(raw)' has no host", fix: fix)
        }
        if scheme == "http" && !GitHubTarget.isLoopback(host) {
            throw RunnerError(
                .invalidConfig, input: key, problem: "'\(raw)' uses plain http, which would send tokens in clear",
                fix: "use https")
        }
        let path = Array(parts.dropFirst())
        let valid = path.allSatisfy { segment in
            !segment.isEmpty && segment != "." && segment != ".."
                && segment.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        }
        guard valid else {
            throw RunnerError(.invalidConfig, input: key, problem: "'\(raw)' has an unexpected path", fix: fix)
        }
        switch path.count {
        case 1: scope = .organization(path[0])
        case 2 where path[0] == "enterprises": scope = .enterprise(path[1])
        case 2: scope = .repository(owner: path[0], name: path[1])
        default:
            throw RunnerError(
                .invalidConfig, input: key,
                problem: "'\(raw)' names neither a repository, an organization nor an enterprise",
                fix: fix)
        }
        self.url = text
        self.scheme = scheme
        self.host = host
    }

    /// The REST API root: `https://api.github.com`, `https://api.<tenant>.ghe.com`, or
    /// `https://HOST/api/v3` for GitHub Enterprise Server.
    public var apiBase: String {
        if host == "github.com" || host == "www.github.com" { return "https://api.github.com" }
        if host.hasSuffix(".ghe.com") { return "https://api.\(host)" }
        return "\(scheme)://\(host)/api/v3"
    }

    /// The API path prefix of the runner endpoints: `repos/O/R`, `orgs/O` or `enterprises/E`.
    public var runnersPath: String {
        switch scope {
        case .repository(let owner, let name): "repos/\(owner)/\(name)"
        case .organization(let org): "orgs/\(org)"
        case .enterprise(let enterprise): "enterprises/\(enterprise)"
        }
    }

    public var description: String { url }

    static func isLoopback(_ hostAndPort: String) -> Bool {
        let host = hostAndPort.split(separator: ":").first.map(String.init) ?? hostAndPort
        return host == "127.0.0.1" || host == "localhost" || hostAndPort.hasPrefix("[::1]")
    }
}
