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
    /// The image already unpacked for `reference` in the content store (no registry asked), or
    /// nil; when found it is held for the job until it ends and marked used.
    func lookup(_ reference: String) async throws(RunnerError) -> PulledRegistryImage?
    /// Pulls and unpacks `reference` (with `credentials`, when the workflow gives them); each
    /// progress line goes to `progress`.
    func pull(
        _ reference: String, credentials: JobRegistryCredentials?, progress: @Sendable (String) -> Void
    ) async throws(RunnerError) -> PulledRegistryImage
}

/// Registry images through the privileged helper: `ci-nspawn-run pull` (through `sudo -n` for
/// the runner user), the request (reference, credentials, the job's owner) on stdin as one JSON
/// object, the answer one JSON line on stdout, progress on stderr. ``lookup(_:)`` is
/// `ci-nspawn-run pull --store-only`: the helper reads the store as root (the tree by its
/// manifest digest, below the store's root-owned directories) and answers nothing when the
/// image is not there. Either way the job's owner (``owner``) pins the image until the job
/// ends, so the cache budget never removes it under the job.
struct HelperRegistryImages: RegistryImages {
    var helper: String
    var throughSudo: Bool
    /// The job's owner process (``ContainerHook/ownerPID``), sent as the request's `ownerPID`.
    var owner: Int32?
    var runner: any CommandRunner = SystemCommandRunner()

    struct Request: Encodable {
        var reference: String
        var credentials: JobRegistryCredentials?
        var ownerPID: Int32?
    }

    /// `[sudo -n --] ci-nspawn-run pull [--store-only]`.
    func command(storeOnly: Bool) -> Command {
        let pull = Command(helper, storeOnly ? ["pull", "--store-only"] : ["pull"])
        return throughSudo ? Sudo().nonInteractive(pull) : pull
    }

    func encoded(_ request: Request) throws(RunnerError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try encoder.encode(request)) + [0x0a] } catch {
            throw RunnerError(
                .internal, input: request.reference, problem: "could not encode the pull request", underlying: error)
        }
    }

    func lookup(_ reference: String) async throws(RunnerError) -> PulledRegistryImage? {
        let command = command(storeOnly: true)
        let input = try encoded(Request(reference: reference, credentials: nil, ownerPID: owner))
        let result = try await runner.run(command, input: input, output: .captured)
        guard result.status.isSuccess else {
            let answer = result.standardError.split(separator: "\n").last.map(String.init) ?? "\(result.status)"
            throw RunnerError(
                .commandFailed, input: reference, problem: "could not be looked up in the image store: \(answer)",
                fix: "check the image reference, and the sudoers rule for \(helper)")
        }
        let line = result.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
        guard !line.isEmpty else { return nil }
        return try Self.decode(line, command: command)
    }

    func pull(
        _ reference: String, credentials: JobRegistryCredentials?, progress: @Sendable (String) -> Void
    ) async throws(RunnerError) -> PulledRegistryImage {
        let command = command(storeOnly: false)
        let input = try encoded(Request(reference: reference, credentials: credentials, ownerPID: owner))
        let result = try await runner.run(command, input: input, output: .captured)
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
        return try Self.decode(line, command: command)
    }

    /// The helper's one JSON line, refused unless it names a manifest digest.
    static func decode(_ line: String, command: Command) throws(RunnerError) -> PulledRegistryImage {
        guard let pulled = try? JSONDecoder().decode(PulledRegistryImage.self, from: Data(line.utf8)),
            GuestPolicy.registryTreeDigest(pulled.digest) != nil
        else {
            throw RunnerError(
                .internal, input: command.description, problem: "answered something that is not a pulled image")
        }
        return pulled
    }
}
