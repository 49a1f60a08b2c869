import FoundationEssentials
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A user name and password (or token) for a registry: a job's `credentials`, or an entry of
/// the host's auth file. The password is a ``Secret``: it never reaches argv, a log or a file.
public struct RegistryCredentials: Sendable, Hashable, Codable {
    public var username: String
    public var password: Secret
    /// The registry they are for (`ghcr.io`, `https://index.docker.io/v1/`); nil: the image's.
    public var serverURL: String?

    public init(username: String, password: Secret, serverURL: String? = nil) {
        self.username = username
        self.password = password
        self.serverURL = serverURL
    }

    enum CodingKeys: String, CodingKey {
        case username, password
        case serverURL = "serverUrl"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        username = try container.decode(String.self, forKey: .username)
        password = Secret(try container.decode(String.self, forKey: .password))
        serverURL = try container.decodeIfPresent(String.self, forKey: .serverURL)
    }

    /// Encodes the password in clear: only for the helper's stdin.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(username, forKey: .username)
        try container.encode(password.value, forKey: .password)
        try container.encodeIfPresent(serverURL, forKey: .serverURL)
    }

    /// `Basic base64(user:password)`.
    var basicAuthorization: Secret {
        Secret("Basic " + Data((username + ":" + password.value).utf8).base64EncodedString())
    }

    /// Whether these credentials are for `registry` (`docker.io`, `ghcr.io`, `127.0.0.1:5000`):
    /// no server URL means the image's registry.
    public func apply(to registry: String) -> Bool {
        guard let serverURL, !serverURL.isEmpty else { return true }
        return Self.registryName(serverURL) == registry
    }

    /// The index after `://` in `text`, if it has one.
    static func schemeEnd(_ text: Substring) -> Substring.Index? {
        var index = text.startIndex
        while index < text.endIndex {
            if text[index...].hasPrefix("://") { return text.index(index, offsetBy: 3) }
            index = text.index(after: index)
        }
        return nil
    }

    /// A server URL or auth-file key as the registry name references use: scheme and path
    /// dropped, docker's aliases folded into `docker.io`.
    public static func registryName(_ server: String) -> String {
        var text = Substring(server)
        if let scheme = schemeEnd(text) { text = text[scheme...] }
        if let slash = text.firstIndex(of: "/") { text = text[..<slash] }
        let host = text.lowercased()
        switch host {
        case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com": return "docker.io"
        default: return host
        }
    }
}
