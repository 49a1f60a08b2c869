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

    /// Resolves `request` under `RUNNER_IMAGE_PULL`, pinned for `holder` (the job's owner),
    /// then keeps the store within `RUNNER_IMAGE_CACHE_MAX` (never removing the image just
    /// resolved or one in use). With `storeOnly`, the store alone answers (nil: not there) and
    /// nothing is pulled or removed.
    /// The job's owner as the holder of the images it resolves: only a process that may own the
    /// caller's guests (``GuestOwner``); nil without one.
    static func holder(ownerPID: Int32?) throws(RunnerError) -> ImageHolder? {
        try ownerPID.map { (pid) throws(RunnerError) -> ImageHolder in
            let owner = try GuestOwner.resolve(requested: pid, caller: .current)
            return ImageHolder(pid: owner.pid, startTime: owner.startTime)
        }
    }

    static func pull(
        _ request: RegistryPullRequest, layout: HostLayout, storeOnly: Bool = false, holder: ImageHolder? = nil,
        progress: ProgressReporter, logger: Logger
    ) async throws(RunnerError) -> PulledImage? {
        let reference = try ImageReference(parsing: request.reference)
        let config = try config(layout: layout)
        let store = store(layout: layout, config: config, logger: logger)
        if storeOnly { return try await store.hold(reference, holder: holder) }
        let image = try await store.resolve(
            reference, policy: config.imagePull, credentials: request.credentials, holder: holder, progress: progress)
        if let budget = config.imageCacheMax {
            let keeping = treesInUse(layout: layout).union([image.treeDirectory])
            _ = try await DedicatedThread.run { () throws(RunnerError) -> [PulledImage] in
                try store.enforceBudget(maxBytes: budget, keeping: keeping)
            }
        }
        return image
    }

    /// A job's guests stopped: the images `owners` pinned are released once none of their guests
    /// is left, then the store is brought within `RUNNER_IMAGE_CACHE_MAX`, least recently used
    /// first, never removing what a guest still boots from or a live holder pins. Failures are
    /// logged: the job's cleanup goes on.
    static func jobEnded(owners: [ImageHolder], layout: HostLayout, remaining: [GuestRecord], logger: Logger) async {
        let store = RegistryImageStore(layout: layout, logger: logger)
        do throws(RunnerError) {
            let busy = Set(remaining.compactMap(\.imageHolder))
            for owner in Set(owners) where !busy.contains(owner) {
                _ = try await DedicatedThread.run { () throws(RunnerError) -> Int in try store.release(owner) }
            }
            guard FilePaths.exists(layout.ociTreesDirectory), let budget = try config(layout: layout).imageCacheMax
            else { return }
            let keeping = treesInUse(layout: layout)
            _ = try await DedicatedThread.run { () throws(RunnerError) -> [PulledImage] in
                try store.enforceBudget(maxBytes: budget, keeping: keeping)
            }
        } catch {
            logger.warning("could not keep the registry image store within its budget", metadata: ["error": "\(error)"])
        }
    }
}

extension GuestRecord {
    /// The job's owner process as an image holder (records of older helpers may name none).
    var imageHolder: ImageHolder? {
        guard let pid = ownerPID, let start = ownerStartTime else { return nil }
        return ImageHolder(pid: pid, startTime: start)
    }
}

extension GuestManager {
    /// Stops `names` (see ``GuestManager/stop(_:)``), then ends their jobs' hold on registry
    /// images (``RegistryHost/jobEnded(owners:layout:remaining:logger:)``): what `cleanup_job`
    /// runs, in process or through `ci-nspawn-run stop`.
    func stopEndingJobs(_ names: [String]) async throws(RunnerError) {
        var owners: [ImageHolder] = []
        for name in names {
            if let owner = (try? record(name))??.imageHolder { owners.append(owner) }
        }
        try await stop(names)
        await RegistryHost.jobEnded(owners: owners, layout: layout, remaining: list(), logger: logger)
    }

    /// ``GuestManager/gc(all:owner:network:)``; with `owner` (a job whose state was lost), its images
    /// are released as ``stopEndingJobs(_:)`` does.
    func gcEndingJobs(all: Bool, owner: Int32?, network: NetworkSweep = .full) async -> [String] {
        let removed = await gc(all: all, owner: owner, network: network)
        if let owner, let start = ProcessTable.startTime(of: owner) {
            await RegistryHost.jobEnded(
                owners: [ImageHolder(pid: owner, startTime: start)], layout: layout, remaining: list(), logger: logger)
        }
        return removed
    }
}
