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

/// A host auth file in docker's `config.json` format (`RUNNER_REGISTRY_AUTH_FILE`): `auths` maps a
/// registry to `{"auth": base64(user:password)}` or `{"username", "password"}`. The file must be
/// a regular file owned by root with mode 0600 (it holds secrets); anything else is refused.
public struct RegistryAuthFile: Sendable {
    public var entries: [String: RegistryCredentials]

    public init(entries: [String: RegistryCredentials]) { self.entries = entries }

    /// Reads and checks `path`.
    public static func load(_ path: String) throws(RunnerError) -> RegistryAuthFile {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else {
            throw RunnerError.posix(
                "could not open the registry auth file", path, fix: "check RUNNER_REGISTRY_AUTH_FILE in config.env")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw RunnerError.posix("could not stat", path, fix: nil) }
        guard st.st_mode & S_IFMT == S_IFREG, st.st_uid == 0, st.st_mode & 0o077 == 0 else {
            throw RunnerError(
                .permission, input: path,
                problem: "must be a regular file owned by root with mode 0600 (it holds registry passwords)",
                fix: "chown root:root \(path) && chmod 0600 \(path)")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count < 4 << 20 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return try parse(bytes, source: path)
    }

    /// Parses the JSON of an auth file.
    public static func parse(_ bytes: [UInt8], source: String) throws(RunnerError) -> RegistryAuthFile {
        struct File: Decodable {
            struct Entry: Decodable {
                var auth: String?
                var username: String?
                var password: String?
            }
            var auths: [String: Entry]?
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(bytes))
        } catch {
            throw RunnerError(
                .invalidInput, input: source, problem: "is not a docker config.json (`auths`)",
                fix: "write {\"auths\": {\"REGISTRY\": {\"auth\": \"BASE64(user:password)\"}}}")
        }
        var entries: [String: RegistryCredentials] = [:]
        for (server, entry) in file.auths ?? [:] {
            let registry = RegistryCredentials.registryName(server)
            if let username = entry.username, let password = entry.password {
                entries[registry] = RegistryCredentials(
                    username: username, password: Secret(password), serverURL: registry)
            } else if let auth = entry.auth, let decoded = Data(base64Encoded: auth),
                let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            {
                entries[registry] = RegistryCredentials(
                    username: String(text[..<colon]), password: Secret(String(text[text.index(after: colon)...])),
                    serverURL: registry)
            }
        }
        return RegistryAuthFile(entries: entries)
    }

    /// The credentials for `registry`, if the file has some.
    public func credentials(for registry: String) -> RegistryCredentials? { entries[registry] }
}

/// A `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
public struct AuthChallenge: Sendable, Hashable {
    /// `bearer` or `basic` (lowercased).
    public var scheme: String
    /// The parameters, names lowercased.
    public var parameters: [String: String]

    public init(scheme: String, parameters: [String: String]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    public var realm: String? { parameters["realm"] }
    public var service: String? { parameters["service"] }
    public var scope: String? { parameters["scope"] }

    /// Parses one header value; nil when it names no scheme.
    public init?(header: String) {
        var rest = Substring(header).drop { $0 == " " }
        let scheme = rest.prefix { $0 != " " && $0 != "," }
        guard !scheme.isEmpty else { return nil }
        rest = rest.dropFirst(scheme.count)
        var parameters: [String: String] = [:]
        while true {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard !rest.isEmpty else { break }
            let name = rest.prefix { $0 != "=" && $0 != " " && $0 != "," }
            rest = rest.dropFirst(name.count).drop { $0 == " " }
            guard rest.first == "=" else {
                // A token68 or a bare word: skip it.
                rest = rest.drop { $0 != "," }
                continue
            }
            rest = rest.dropFirst().drop { $0 == " " }
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if escaped {
                        value.append(c)
                        escaped = false
                    } else if c == "\\" {
                        escaped = true
                    } else if c == "\"" {
                        break
                    } else {
                        value.append(c)
                    }
                }
            } else {
                value = String(rest.prefix { $0 != "," && $0 != " " })
                rest = rest.dropFirst(value.count)
            }
            parameters[name.lowercased()] = value
        }
        self.init(scheme: scheme.lowercased(), parameters: parameters)
    }
}
