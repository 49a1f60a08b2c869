import RunnerCore

/// What a pull may reach and how: the registries allowed, their mirrors, the host's auth file,
/// the platform an index is resolved to, and the retry pacing. Built from `config.env`
/// (``RunnerConfig/registries``, ``RunnerConfig/registryMirrors``,
/// ``RunnerConfig/registryAuthFile``).
public struct RegistrySettings: Sendable, Hashable {
    /// Registry names references may use (`docker.io`, `ghcr.io`, `127.0.0.1:5000`); `*` allows any.
    public var allowed: [String]
    /// Mirrors per registry name, tried in order before the registry itself: base URLs such as
    /// `https://mirror.gcr.io` (their `/v2/` API serves the same repositories).
    public var mirrors: [String: [String]]
    /// The host's auth file (docker `config.json`), or nil.
    public var authFile: String?
    /// The platform an index is resolved to.
    public var platform: OCIPlatform
    /// The pauses between tries of a request that failed for a transient reason (connection,
    /// 429, 5xx): one more try than pauses.
    public var retryDelays: [Double]
    /// At most this many blobs download at once.
    public var concurrentDownloads: Int

    /// `RUNNER_REGISTRIES`' default: the public registries CI images come from.
    public static let defaultAllowed = ["docker.io", "ghcr.io", "quay.io", "mcr.microsoft.com", "public.ecr.aws"]

    public init(
        allowed: [String] = RegistrySettings.defaultAllowed, mirrors: [String: [String]] = [:],
        authFile: String? = nil, platform: OCIPlatform = .host, retryDelays: [Double] = [0.5, 1, 2],
        concurrentDownloads: Int = 3
    ) {
        self.allowed = allowed
        self.mirrors = mirrors
        self.authFile = authFile
        self.platform = platform
        self.retryDelays = retryDelays
        self.concurrentDownloads = concurrentDownloads
    }

    /// The settings `config.env` asks for.
    public init(config: RunnerConfig) {
        self.init(allowed: config.registries, mirrors: config.registryMirrors, authFile: config.registryAuthFile)
    }

    /// Whether a reference may name `registry`.
    public func allows(_ registry: String) -> Bool {
        allowed.contains("*") || allowed.contains(registry)
    }
}
