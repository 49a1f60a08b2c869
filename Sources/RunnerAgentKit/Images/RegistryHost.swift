import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerImages
import RunnerSystem

/// The registry image store as `config.env` sets it up, for the helper's `pull` and the
/// `runner-agent image` commands.
enum RegistryHost {
    /// The keys a pull reads.
    static let keys: [ConfigKey] = [
        .imagePull, .imageCacheMax, .registries, .registryMirrors, .registryAuthFile, .guestUserNamespace,
    ]

    /// `config.env`, its syntax and the pull's keys checked (absent: every key's default).
    static func config(layout: HostLayout) throws(RunnerError) -> RunnerConfig {
        let bytes = FilePaths.exists(layout.configFile) ? try FilePaths.read(layout.configFile) : []
        return try RegistryHost.config(bytes: bytes, source: layout.configFile)
    }

    static func config(bytes: [UInt8], source: String) throws(RunnerError) -> RunnerConfig {
        let (config, problems) = RunnerConfig.check(bytes, source: source, options: .syntax)
        let names = Set(keys.map(\.name))
        let relevant = problems.filter { problem in problem.key.map { names.contains($0) } ?? (problem.line != nil) }
        guard let config, relevant.isEmpty else {
            throw RunnerError(
                .invalidConfig, input: source, problem: relevant.map(\.description).joined(separator: "; "),
                fix: "fix these lines (`runner-build config example` documents every key)")
        }
        return config
    }

    /// The store: `RUNNER_REGISTRIES`, `RUNNER_REGISTRY_MIRRORS`, `RUNNER_REGISTRY_AUTH_FILE`
    /// (under the layout's root), owners shifted unless `RUNNER_GUEST_USERNS=off`.
    static func store(layout: HostLayout, config: RunnerConfig, logger: Logger) -> RegistryImageStore {
        var settings = RegistrySettings(config: config)
        settings.authFile = config.registryAuthFile.map { layout.path($0) }
        return RegistryImageStore(
            layout: layout, settings: settings, userNamespace: config.guestUserNamespace ? .standard : nil,
            logger: logger)
    }

    /// Tree directories guests boot from now (the budget and `remove` keep them).
    static func treesInUse(layout: HostLayout) -> Set<String> {
        var trees = Set<String>()
        for name in FilePaths.entries(of: layout.guestStateDirectory) where name.hasSuffix(".json") {
            guard let bytes = try? FilePaths.read(layout.guestStateDirectory + "/" + name),
                let record = try? JSONDecoder().decode(GuestRecord.self, from: Data(bytes))
            else { continue }
            if record.rootfs.hasPrefix(layout.ociTreesDirectory + "/") {
                trees.insert(FilePaths.parent(of: record.rootfs))
            }
        }
        return trees
    }

    /// Resolves `request` under `RUNNER_IMAGE_PULL`, then keeps the store within
    /// `RUNNER_IMAGE_CACHE_MAX` (never removing the image just resolved or one in use).
    static func pull(_ request: RegistryPullRequest, layout: HostLayout, progress: ProgressReporter, logger: Logger)
        async throws(RunnerError) -> PulledImage
    {
        let reference = try ImageReference(parsing: request.reference)
        let config = try config(layout: layout)
        let store = store(layout: layout, config: config, logger: logger)
        let image = try await store.resolve(
            reference, policy: config.imagePull, credentials: request.credentials, progress: progress)
        if let budget = config.imageCacheMax {
            let keeping = treesInUse(layout: layout).union([image.treeDirectory])
            _ = try await DedicatedThread.run { () throws(RunnerError) -> [PulledImage] in
                try store.enforceBudget(maxBytes: budget, keeping: keeping)
            }
        }
        return image
    }
}
