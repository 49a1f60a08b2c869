import FoundationEssentials
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

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
