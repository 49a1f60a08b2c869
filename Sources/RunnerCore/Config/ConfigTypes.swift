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

/// One entry of `RUNNER_IMAGES`: a guest image to install, pinned by digest.
public struct ImageSpec: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let url: String
    /// Lowercase hex.
    public let sha256: String

    public var description: String { "\(name)=\(url)@sha256:\(sha256)" }

    /// Parses `NAME=URL@sha256:HEX`; nil when malformed.
    public init?(_ text: String) {
        guard let equals = text.firstIndex(of: "="),
            let at = text.ranges(of: "@sha256:").last
        else { return nil }
        let name = String(text[..<equals])
        let url = String(text[text.index(after: equals)..<at.lowerBound])
        let hex = String(text[at.upperBound...])
        guard ConfigSyntax.isImageName(name), ConfigSyntax.isURL(url), SHA256Digest.isValidHex(hex) else { return nil }
        self.name = name
        self.url = url
        self.sha256 = hex.lowercased()
    }
}

/// One entry of `RUNNER_IMAGE_ALIASES`: a job's container image name mapped to a guest image.
public struct ImageAlias: Sendable, Hashable, CustomStringConvertible {
    /// What a workflow writes in `container:`, e.g. `ubuntu:22.04`.
    public let alias: String
    /// The guest image name, e.g. `debian-bookworm`.
    public let image: String

    public var description: String { "\(alias)=\(image)" }

    /// Parses `ALIAS=NAME` (split at the last `=`); nil when malformed.
    public init?(_ text: String) {
        guard let equals = text.lastIndex(of: "=") else { return nil }
        let alias = String(text[..<equals])
        let image = String(text[text.index(after: equals)...])
        guard !alias.isEmpty, !alias.contains("="), ConfigSyntax.isImageName(image) else { return nil }
        guard alias.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F }) else {
            return nil
        }
        self.alias = alias
        self.image = image
    }
}

/// Where a secret comes from: the value itself in config.env, or a 0600 file.
public enum SecretSource: Sendable, Hashable, CustomStringConvertible {
    case inline(String)
    case file(String)

    /// Never shows an inline value.
    public var description: String {
        switch self {
        case .inline: "<redacted>"
        case .file(let path): "file \(path)"
        }
    }

    /// The secret: the inline value, or the file's content without surrounding whitespace (its
    /// trailing newline). An unreadable or empty file is a configuration error naming the file.
    /// `layout` maps the file's host path (tests use a temporary root). Validation
    /// (``RunnerConfig/Options/secretFiles``) has checked the file's mode; this only reads it.
    public func read(layout: HostLayout = HostLayout()) throws(RunnerError) -> String {
        switch self {
        case .inline(let value):
            return value
        case .file(let path):
            let bytes: [UInt8]
            do {
                bytes = try FilePaths.read(layout.path(path))
            } catch {
                throw RunnerError(
                    .invalidConfig, input: path, problem: "cannot be read",
                    fix: "create it (a regular file, mode 0600, owner root) or fix the *_FILE key that names it")
            }
            let text = String(decoding: bytes, as: UTF8.self)
            guard let first = text.firstIndex(where: { !$0.isWhitespace }),
                let last = text.lastIndex(where: { !$0.isWhitespace })
            else {
                throw RunnerError(.invalidConfig, input: path, problem: "is empty", fix: "put the secret in \(path)")
            }
            return String(text[first...last])
        }
    }
}

/// How the runner registers.
public enum RunnerCredential: Sendable, Hashable {
    case registrationToken(SecretSource)
    case jitConfig(SecretSource)
    case pat(SecretSource)
    /// A GitHub App: its id, the installation id, and the path of its PEM private key.
    case app(appID: String, installationID: String, privateKeyFile: String)
}

/// Small syntax checks shared by the config parser and validator.
enum ConfigSyntax {
    static func isHost(_ host: String) -> Bool {
        var name = Substring(host)
        if let colon = name.lastIndex(of: ":") {
            let port = name[name.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCIIDigit) else { return false }
            name = name[..<colon]
        }
        return !name.isEmpty && name.unicodeScalars.allSatisfy { isAlnum($0) || $0 == "-" || $0 == "." }
    }

    static func isGitHubName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100 && name != "." && name != ".."
            && name.unicodeScalars.allSatisfy { isAlnum($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    static func isURL(_ text: String) -> Bool {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            rest = text.dropFirst(8)
        } else if lower.hasPrefix("http://") {
            rest = text.dropFirst(7)
        } else {
            return false
        }
        guard !rest.isEmpty else { return false }
        let authority = rest.prefix(while: { $0 != "/" && $0 != "?" && $0 != "#" })
        let hostPart = authority.split(separator: "@").last.map(String.init) ?? ""
        guard isHost(hostPart) else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" }
    }

    static func isImageName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, isLowerAlnum(first), name.count <= 64 else { return false }
        return name.unicodeScalars.allSatisfy { isLowerAlnum($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    static func isAlnum(_ s: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s)
    }

    static func isLowerAlnum(_ s: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(s) || ("0"..."9").contains(s)
    }

    static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
