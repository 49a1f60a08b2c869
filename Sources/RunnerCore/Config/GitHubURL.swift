/// `RUNNER_GITHUB_URL`, understood: which host, which scope, which API.
public struct GitHubURL: Sendable, Hashable, CustomStringConvertible {
    /// What the runner registers with.
    public enum Scope: Sendable, Hashable {
        case repository(owner: String, name: String)
        case organization(String)
        case enterprise(String)
    }

    /// `https` (or `http` for a test server; never for github.com).
    public let scheme: String
    /// The host, with `:port` when one was given.
    public let host: String
    public let scope: Scope

    /// The URL as `config.sh --url` wants it, without a trailing slash.
    public var description: String {
        switch scope {
        case .repository(let owner, let name): "\(scheme)://\(host)/\(owner)/\(name)"
        case .organization(let org): "\(scheme)://\(host)/\(org)"
        case .enterprise(let slug): "\(scheme)://\(host)/enterprises/\(slug)"
        }
    }

    /// Whether this is github.com (rather than GHE.com or GitHub Enterprise Server).
    public var isGitHubDotCom: Bool { host == "github.com" || host == "www.github.com" }

    /// The REST API base URL: `https://api.github.com`, `https://api.SUB.ghe.com` for GHE.com,
    /// `https://HOST/api/v3` for GitHub Enterprise Server.
    public var apiBaseURL: String {
        if isGitHubDotCom { return "https://api.github.com" }
        if host.hasSuffix(".ghe.com") { return "\(scheme)://api.\(host)" }
        return "\(scheme)://\(host)/api/v3"
    }

    /// The scope's API path: `repos/OWNER/REPO`, `orgs/ORG` or `enterprises/SLUG`.
    public var apiScopePath: String {
        switch scope {
        case .repository(let owner, let name): "repos/\(owner)/\(name)"
        case .organization(let org): "orgs/\(org)"
        case .enterprise(let slug): "enterprises/\(slug)"
        }
    }

    /// `POST` here for a registration token.
    public var registrationTokenURL: String { "\(apiBaseURL)/\(apiScopePath)/actions/runners/registration-token" }
    /// `POST` here for a removal token.
    public var removeTokenURL: String { "\(apiBaseURL)/\(apiScopePath)/actions/runners/remove-token" }

    /// Parses a repository, organization or enterprise URL; nil when it is none of those.
    public init?(_ text: String) {
        let schemeSplit = text.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard schemeSplit.count == 2 else { return nil }
        let scheme = schemeSplit[0].lowercased()
        guard scheme == "https" || scheme == "http" else { return nil }
        var rest = Substring(schemeSplit[1])
        while rest.hasSuffix("/") { rest.removeLast() }
        if rest.hasSuffix(".git") { rest.removeLast(4) }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        let host = parts[0].lowercased()
        guard ConfigSyntax.isHost(host), !host.contains("@") else { return nil }
        let names = parts.dropFirst()
        guard names.allSatisfy(ConfigSyntax.isGitHubName) else { return nil }
        switch names.count {
        case 1:
            guard names[1] != "enterprises" else { return nil }
            scope = .organization(names[1])
        case 2 where names[1] == "enterprises":
            scope = .enterprise(names[2])
        case 2:
            scope = .repository(owner: names[1], name: names[2])
        default:
            return nil
        }
        self.scheme = scheme
        self.host = host == "www.github.com" ? "github.com" : host
        if scheme == "http" && self.host == "github.com" { return nil }
    }
}
