import RunnerCore
import RunnerImages

/// The config.env keys the hook and the helper read (from ``RunnerConfig``), in one place.
///
/// None of them is a secret: `ci-nspawn-run settings` prints them as JSON for the unprivileged
/// hook, which cannot read config.env (0600 root, it holds the runner's credentials).
public struct HookSettings: Sendable, Hashable, Codable {
    /// `RUNNER_IMAGE_ALIASES`: `ubuntu:22.04=debian-bookworm` pairs.
    public var imageAliases: [String: String] = [:]
    /// `RUNNER_DEFAULT_IMAGE` (what `doctor` boots; no job image falls back to it).
    public var defaultImage: String = RunnerConfig.empty.defaultImage
    /// `RUNNER_ALLOW_DOCKER_SOCK`: bind `/var/run/docker.sock` when it exists.
    public var allowDockerSock: Bool = RunnerConfig.empty.allowDockerSock
    /// `RUNNER_GUEST_MOUNT_ALLOW`: extra allowed mount-source roots.
    public var mountAllow: [String] = []
    /// `RUNNER_WORK_DIR`, when set.
    public var workDirectory: String?
    /// How long services may take to accept connections on their ports.
    public var serviceReadyTimeout: Double = 60
    /// `RUNNER_GUEST_USERNS=on` (the default): guests run in ``GuestUserNamespace/standard``.
    public var guestUserNamespace: Bool = RunnerConfig.empty.guestUserNamespace
    /// `RUNNER_GUEST_CAP_ADD`: capabilities (`CAP_X`) a job's `--cap-add` may add.
    public var capAdd: [String] = []
    /// `RUNNER_GUEST_NETWORK=private` (the default): a private network per job.
    public var privateNetwork: Bool = RunnerConfig.empty.guestPrivateNetwork
    /// `RUNNER_GUEST_BLOCKED_NETS`.
    public var blockedNets: [String] = []
    /// `RUNNER_JOB_MEMORY_MAX`, `RUNNER_JOB_CPUS`, `RUNNER_JOB_TASKS_MAX`: each job's limits (its guests' together).
    public var limits = GuestLimits()
    /// `RUNNER_IMAGE_PULL`: whether `prepare_job` pulls a registry image the content store
    /// lacks (`missing`), always asks the registry (`always`), or uses the store only (`never`).
    public var imagePull: RunnerConfig.ImagePullPolicy = ConfigKey.Defaults.imagePull

    /// The settings of a config.env that sets nothing: every key's default (``ConfigKey``).
    public init() {}

    /// The keys the hook reads; problems with other keys are the installer's and service's business.
    static let keys: [ConfigKey] = [
        .imageAliases, .defaultImage, .allowDockerSock, .guestMountAllow, .workDirectory, .guestUserNamespace,
        .guestCapAdd, .guestNetwork, .guestBlockedNets, .jobMemoryMax, .jobCPUs, .jobTasksMax, .imagePull,
    ]

    enum CodingKeys: String, CodingKey {
        case imageAliases, defaultImage, allowDockerSock, mountAllow, workDirectory, serviceReadyTimeout
        case guestUserNamespace, capAdd, privateNetwork, blockedNets, limits, imagePull
    }

    public init(from decoder: any Decoder) throws {
        // A key missing from the JSON keeps its default.
        let c = try decoder.container(keyedBy: CodingKeys.self)
        imageAliases = try c.decodeIfPresent([String: String].self, forKey: .imageAliases) ?? imageAliases
        defaultImage = try c.decodeIfPresent(String.self, forKey: .defaultImage) ?? defaultImage
        allowDockerSock = try c.decodeIfPresent(Bool.self, forKey: .allowDockerSock) ?? allowDockerSock
        mountAllow = try c.decodeIfPresent([String].self, forKey: .mountAllow) ?? mountAllow
        workDirectory = try c.decodeIfPresent(String.self, forKey: .workDirectory)
        serviceReadyTimeout =
            try c.decodeIfPresent(Double.self, forKey: .serviceReadyTimeout) ?? serviceReadyTimeout
        guestUserNamespace = try c.decodeIfPresent(Bool.self, forKey: .guestUserNamespace) ?? guestUserNamespace
        capAdd = try c.decodeIfPresent([String].self, forKey: .capAdd) ?? capAdd
        privateNetwork = try c.decodeIfPresent(Bool.self, forKey: .privateNetwork) ?? privateNetwork
        blockedNets = try c.decodeIfPresent([String].self, forKey: .blockedNets) ?? blockedNets
        limits = try c.decodeIfPresent(GuestLimits.self, forKey: .limits) ?? limits
        imagePull = try c.decodeIfPresent(RunnerConfig.ImagePullPolicy.self, forKey: .imagePull) ?? imagePull
    }

    /// Reads `config.env` under `layout` (no file: defaults). Syntax errors and problems with
    /// the hook's own keys are errors.
    public static func load(layout: HostLayout) throws(RunnerError) -> HookSettings {
        guard FilePaths.exists(layout.configFile) else { return HookSettings() }
        let (config, problems) = RunnerConfig.check(
            try FilePaths.read(layout.configFile), source: layout.configFile, options: .syntax)
        let names = Set(keys.map(\.name))
        let relevant = problems.filter { problem in problem.key.map { names.contains($0) } ?? (problem.line != nil) }
        guard let config, relevant.isEmpty else {
            throw RunnerError(
                .invalidConfig, input: layout.configFile,
                problem: relevant.map(\.description).joined(separator: "; "),
                fix: "fix these lines (`runner-build config example` documents every key)")
        }
        return HookSettings(config, layout: layout)
    }

    /// The settings a validated config gives.
    public init(_ config: RunnerConfig, layout: HostLayout) {
        for alias in config.imageAliases { imageAliases[alias.alias] = alias.image }
        defaultImage = config.defaultImage
        allowDockerSock = config.allowDockerSock
        mountAllow = config.guestMountAllow.map { layout.path($0) }
        if config.isSet(.workDirectory) { workDirectory = layout.path(config.workDirectory) }
        guestUserNamespace = config.guestUserNamespace
        capAdd = config.guestCapAdd
        privateNetwork = config.guestPrivateNetwork
        blockedNets = config.guestBlockedNets
        limits = GuestLimits(memoryMax: config.jobMemoryMax, cpus: config.jobCPUs, tasksMax: config.jobTasksMax)
        imagePull = config.imagePull
    }

    /// The guest policy these settings give on `layout`.
    public func guestPolicy(layout: HostLayout, backend: GuestBackend? = nil) -> GuestPolicy {
        var extra = mountAllow
        if allowDockerSock { extra.append(layout.path("/var/run/docker.sock")) }
        var policy = GuestPolicy(
            layout: layout, workDirectory: workDirectory, extraMountRoots: extra,
            backend: backend ?? GuestBackend.detect(layout: HostLayout()))
        policy.userNamespace = guestUserNamespace ? .standard : nil
        policy.allowedCapabilities = capAdd
        if privateNetwork {
            policy.network = GuestNetworkPolicy(names: GuestNetworkNames(layout: layout), blocked: blockedNets)
        }
        policy.limits = limits
        return policy
    }
}
