import FoundationEssentials
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The registry credentials a workflow gives a container (`container.credentials`, sent by the
/// runner as `registry`). The password never reaches a command line or a log: it travels to the
/// puller on stdin only.
public struct JobRegistryCredentials: Sendable, Hashable, Encodable {
    public var username: String?
    public var password: Secret?
    public var serverUrl: String?

    public init(username: String?, password: Secret?, serverUrl: String?) {
        self.username = username
        self.password = password
        self.serverUrl = serverUrl
    }

    enum CodingKeys: String, CodingKey { case username, password, serverUrl }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(username, forKey: .username)
        try c.encodeIfPresent(password?.value, forKey: .password)
        try c.encodeIfPresent(serverUrl, forKey: .serverUrl)
    }
}

/// A registry image unpacked in the content store: the tree a guest starts from is
/// ``HostLayout/ociTree(_:)`` of ``digest``'s hex.
public struct PulledRegistryImage: Codable, Sendable, Hashable {
    public var reference: String
    /// `sha256:<64 hex digits>`: the manifest's digest, naming the tree.
    public var digest: String
    /// The tree's path (for messages; the helper finds the tree by digest).
    public var tree: String?

    public init(reference: String, digest: String, tree: String? = nil) {
        self.reference = reference
        self.digest = digest
        self.tree = tree
    }
}

/// Where the hook gets registry images: the content store, else a pull. The one seam between
/// the hook and the registry client (`ci-nspawn-run pull`, `RegistryImageStore`).
public protocol RegistryImages: Sendable {
    /// The image already unpacked for `reference`, or nil.
    func lookup(_ reference: String) async throws(RunnerError) -> PulledRegistryImage?
    /// Pulls and unpacks `reference` (with `credentials`, when the workflow gives them); each
    /// progress line goes to `progress`.
    func pull(
        _ reference: String, credentials: JobRegistryCredentials?, progress: @Sendable (String) -> Void
    ) async throws(RunnerError) -> PulledRegistryImage
}

/// Registry images through the privileged helper: `ci-nspawn-run pull` (through `sudo -n` for
/// the runner user), the request (reference and credentials) on stdin as one JSON object, the
/// answer one JSON line on stdout, progress on stderr. The helper answers from the content store
/// when it already holds the image, so ``lookup(_:)`` leaves the question to it.
struct HelperRegistryImages: RegistryImages {
    var helper: String
    var throughSudo: Bool
    var runner: any CommandRunner = SystemCommandRunner()

    struct Request: Encodable {
        var reference: String
        var credentials: JobRegistryCredentials?
    }

    func lookup(_ reference: String) async throws(RunnerError) -> PulledRegistryImage? { nil }

    func pull(
        _ reference: String, credentials: JobRegistryCredentials?, progress: @Sendable (String) -> Void
    ) async throws(RunnerError) -> PulledRegistryImage {
        let pull = Command(helper, ["pull"])
        let command = throughSudo ? Sudo().nonInteractive(pull) : pull
        let input: Data
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { input = try encoder.encode(Request(reference: reference, credentials: credentials)) } catch {
            throw RunnerError(
                .internal, input: reference, problem: "could not encode the pull request", underlying: error)
        }
        let result = try await runner.run(command, input: Array(input) + [0x0a], output: .captured)
        for line in result.standardError.split(separator: "\n") where !line.isEmpty {
            progress(String(line))
        }
        guard result.status.isSuccess else {
            let answer = result.standardError.split(separator: "\n").last.map(String.init) ?? "\(result.status)"
            throw RunnerError(
                .commandFailed, input: reference, problem: "could not be pulled: \(answer)",
                fix: "check the image reference and the job's registry credentials (container.credentials)")
        }
        let line = result.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
        guard let pulled = try? JSONDecoder().decode(PulledRegistryImage.self, from: Data(line.utf8)),
            GuestPolicy.registryTreeDigest(pulled.digest) != nil
        else {
            throw RunnerError(
                .internal, input: command.description, problem: "answered something that is not a pulled image")
        }
        return pulled
    }
}
