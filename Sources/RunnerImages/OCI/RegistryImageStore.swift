import FoundationEssentials
import Logging
import RunnerArchive
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The content store of registry images under ``HostLayout/ociDirectory``: verified blobs by
/// digest (``HostLayout/ociBlob(_:)``) and unpacked trees by manifest digest
/// (``HostLayout/ociTree(_:)``: `rootfs/`, `config.json`, `image.json`, `userns`).
///
/// Nothing half-written is ever visible: a blob is downloaded to a temporary file beside its
/// place and renamed only when its sha256 and size match; a tree is unpacked into a staging
/// directory and renamed into place when every layer is applied. A pull killed anywhere leaves
/// temporary files that the next pull removes (their writer's PID is gone). Trees are shared and
/// never changed after they appear; records (`image.json`) change under `.oci/.lock`.
public struct RegistryImageStore: Sendable {
    public let layout: HostLayout
    public var settings: RegistrySettings
    /// The guests' ID range, which layers are unpacked into; nil keeps the layers' IDs
    /// (`RUNNER_GUEST_USERNS=off`).
    public var userNamespace: GuestUserNamespace?
    let runner: any CommandRunner
    let curl: RegistryCurl
    let logger: Logger

    public init(
        layout: HostLayout = HostLayout(), settings: RegistrySettings = RegistrySettings(),
        userNamespace: GuestUserNamespace? = .standard, runner: any CommandRunner = SystemCommandRunner(),
        curl: RegistryCurl = RegistryCurl(), logger: Logger = Logger(label: "runner.registry")
    ) {
        self.layout = layout
        self.settings = settings
        self.userNamespace = userNamespace
        self.runner = runner
        self.curl = curl
        self.logger = logger
    }

    static func now() -> Int64 { Int64(time(nil)) }

    // MARK: Reading (no network)

    /// The tree `reference` resolves to in the store, without asking a registry: a digest
    /// reference by its tree, a tag by the record that lists it. Nil when it is not pulled.
    public func lookup(_ reference: ImageReference) -> PulledImage? {
        if let digest = reference.digest {
            guard let image = image(hex: String(digest.dropFirst("sha256:".count))) else { return nil }
            return PulledImage(
                reference: reference, manifestDigest: image.manifestDigest, treeDirectory: image.treeDirectory,
                record: image.record)
        }
        let wanted = reference.description
        let matches = list().filter { $0.record.references.contains(wanted) }
        guard let best = matches.max(by: { $0.record.pulled < $1.record.pulled }) else { return nil }
        return PulledImage(
            reference: reference, manifestDigest: best.manifestDigest, treeDirectory: best.treeDirectory,
            record: best.record)
    }

    /// The tree of manifest `hex`, if it is complete.
    func image(hex: String) -> PulledImage? {
        guard SHA256Digest.isValidHex(hex) else { return nil }
        let tree = layout.ociTree(hex)
        guard let record = try? PulledImageRecord.load(tree + "/image.json"), FilePaths.exists(tree + "/rootfs")
        else { return nil }
        let shown =
            record.references.last.flatMap { try? ImageReference(parsing: $0) }
            ?? ImageReference(registry: "", repository: "", tag: nil, digest: record.digest)
        return PulledImage(reference: shown, manifestDigest: record.digest, treeDirectory: tree, record: record)
    }

    /// Every complete tree, least recently used first. Unreadable records are skipped.
    public func list() -> [PulledImage] {
        FilePaths.entries(of: layout.ociTreesDirectory)
            .filter { !$0.hasPrefix(".") }
            .compactMap { image(hex: $0) }
            .sorted { ($0.record.lastUsed, $0.manifestDigest) < ($1.record.lastUsed, $1.manifestDigest) }
    }

    // MARK: Pulling

    /// Pulls `reference` for this host's platform: manifest (an index resolved to
    /// ``RegistrySettings/platform``), config and layers, each verified against its digest, then
    /// unpacks the layers into a tree (skipped when the tree of that manifest is already here).
    /// `credentials` are a job's (see ``RegistryClient``); the host's auth file is read when
    /// ``RegistrySettings/authFile`` names one.
    ///
    /// Refuses a registry outside ``RegistrySettings/allowed``. Every failure (unknown tag,
    /// missing platform, refused credentials, unreachable registry, tampered blob, hostile
    /// layer) leaves the store as it was, apart from verified blobs.
    ///
    /// The image is pinned (``pin(_:blobs:holder:)``) from the moment its manifest is known: by
    /// this process until the pull ends, so no budget or `remove` running meanwhile takes the
    /// blobs already downloaded or the tree found; and by `holder` (a job's owner) for as long as
    /// it lives or until ``release(_:)``.
    @discardableResult
    public func pull(
        _ reference: ImageReference, credentials: RegistryCredentials?, holder: ImageHolder? = nil,
        progress: ProgressReporter = .silent
    ) async throws(RunnerError) -> PulledImage {
        guard settings.allows(reference.registry) else {
            throw RunnerError(
                .permission, input: reference.description,
                problem: "registry \(reference.registry) is not allowed (RUNNER_REGISTRIES: "
                    + "\(settings.allowed.joined(separator: ",")))",
                fix: "add \(reference.registry) to RUNNER_REGISTRIES in config.env, or use an allowed registry")
        }
        try prepareDirectories()
        let authFile = try settings.authFile.map { (path) throws(RunnerError) in try RegistryAuthFile.load(path) }
        let client = RegistryClient(
            reference: reference, settings: settings, credentials: credentials, authFile: authFile,
            scratch: layout.ociBlobsDirectory, runner: runner, curl: curl, logger: logger)
        progress.stage("pulling \(reference)")

        // Manifest (through an index when there is one).
        let first = try await client.fetchManifest(reference.manifestReference)
        var manifestBytes = first
        var indexDigest: String?
        if OCIMediaType.isIndex(first.mediaType) {
            let index = try decode(OCIIndex.self, first.bytes, what: "index", reference: reference)
            guard let chosen = index.manifest(for: settings.platform) else {
                let available = index.manifests.compactMap { $0.platform?.description }.filter {
                    !$0.hasPrefix("unknown")
                }
                throw RunnerError(
                    .notFound, input: reference.description,
                    problem: "has no image for \(settings.platform) (it has: "
                        + "\(available.isEmpty ? "none" : available.joined(separator: ", ")))",
                    fix: "use an image built for \(settings.platform)")
            }
            indexDigest = first.digest
            manifestBytes = try await client.fetchManifest(chosen.digest)
            guard manifestBytes.digest == chosen.digest else {
                throw RunnerError(
                    .integrity, input: reference.description,
                    problem: "the manifest's digest is \(manifestBytes.digest), not \(chosen.digest) as the index says",
                    fix: "pull again; if it persists, the registry alters content")
            }
        }
        guard OCIMediaType.isManifest(manifestBytes.mediaType) else {
            throw RunnerError(
                .unsupported, input: reference.description,
                problem: "is a \(manifestBytes.mediaType), not an image manifest",
                fix: "use a container image (OCI or Docker schema 2)")
        }
        let manifest = try decode(OCIManifest.self, manifestBytes.bytes, what: "manifest", reference: reference)
        let manifestHex = String(manifestBytes.digest.dropFirst("sha256:".count))
        progress.stage("resolved to \(manifestBytes.digest) (\(settings.platform), \(manifest.layers.count) layers)")

        // Pinned before a blob is written or a tree looked at (see ``pin(_:blobs:holder:)``).
        let needed =
            [indexDigest, manifestBytes.digest, manifest.config.digest].compactMap { $0 }
            + manifest.layers.map(\.digest)
        let holders = [ImageHolder.current, holder].compactMap { $0 }
        let pins = try await DedicatedThread.run { () throws(RunnerError) -> [String] in
            try holders.map { (holder) throws(RunnerError) -> String in
                try pin(manifestHex, blobs: needed, holder: holder)
            }
        }
        let ownPin = holders.first == ImageHolder.current ? pins.first : nil
        do {
            if indexDigest != nil { try storeBlob(first.bytes, digest: first.digest) }
            try storeBlob(manifestBytes.bytes, digest: manifestBytes.digest)
            let image = try await fetchAndUnpack(
                reference, manifest: manifest, manifestDigest: manifestBytes.digest, indexDigest: indexDigest,
                client: client, progress: progress)
            if let ownPin { try? await DedicatedThread.run { () throws(RunnerError) in try unpin(ownPin) } }
            return image
        } catch {
            for name in pins { try? await DedicatedThread.run { () throws(RunnerError) in try unpin(name) } }
            throw error
        }
    }

    /// The rest of a pull, the image pinned: the tree when it is here already, else the
    /// missing blobs downloaded and the layers unpacked.
    func fetchAndUnpack(
        _ reference: ImageReference, manifest: OCIManifest, manifestDigest: String, indexDigest: String?,
        client: RegistryClient, progress: ProgressReporter
    ) async throws(RunnerError) -> PulledImage {
        let manifestHex = String(manifestDigest.dropFirst("sha256:".count))
        if let existing = image(hex: manifestHex) {
            let indexBlobs = [indexDigest].compactMap { $0 }
            let image = try await DedicatedThread.run { () throws(RunnerError) -> PulledImage in
                try self.record(existing, as: reference, blobs: indexBlobs)
            }
            progress.finish("\(reference) is up to date at \(manifestDigest)")
            return image
        }

        for layer in manifest.layers where !OCIMediaType.isUnpackableLayer(layer.mediaType) {
            throw RunnerError(
                .unsupported, input: reference.description,
                problem: "layer \(layer.digest) is a \(layer.mediaType), which cannot be unpacked",
                fix: "use an image whose layers are tar, tar+gzip or tar+zstd")
        }
        guard manifest.config.sha256Hex != nil, manifest.layers.allSatisfy({ $0.sha256Hex != nil }) else {
            throw RunnerError(
                .unsupported, input: reference.description, problem: "names a blob not addressed by sha256",
                fix: "use an image whose manifest names sha256 digests")
        }

        // Blobs: config and layers, the missing ones downloaded a few at a time.
        let blobs = [manifest.config] + manifest.layers
        try await download(blobs, client: client, progress: progress)

        // The tree.
        let started = MonotonicClock.now()
        let tree = try await unpack(
            manifest, manifestHex: manifestHex, reference: reference, indexDigest: indexDigest,
            extraBlobs: [indexDigest, manifestDigest].compactMap { $0 }, progress: progress)
        progress.finish(
            "pulled \(reference) (\(manifestDigest.prefix(19))…, \(tree.record.size / 1_000_000) MB) "
                + "in \(Int((MonotonicClock.now() - started) * 1000)) ms of unpacking")
        logger.info(
            "pulled image",
            metadata: [
                "reference": "\(reference)", "digest": "\(manifestDigest)", "tree": "\(tree.treeDirectory)",
            ])
        return tree
    }

    /// Makes the store's directories (0755: the trees are readable, as baked images are).
    func prepareDirectories() throws(RunnerError) {
        try FilePaths.createDirectory(layout.ociBlobsDirectory)
        try FilePaths.createDirectory(layout.ociTreesDirectory)
        removeAbandoned()
    }

    /// Temporary blobs and staging trees of pulls whose process is gone.
    func removeAbandoned() {
        for directory in [layout.ociBlobsDirectory, layout.ociTreesDirectory] {
            for entry in FilePaths.entries(of: directory) where entry.hasPrefix(".") {
                let parts = entry.split(separator: "-")
                guard parts.count >= 3, let pid = Int32(parts[parts.count - 2]) else { continue }
                guard !ProcessTable.isAlive(pid, startTime: nil) else { continue }
                try? FilePaths.remove(directory + "/" + entry)
            }
        }
    }

    /// A fresh name beside `directory`'s entries: `.<tag>-<pid>-<random>`.
    static func temporaryName(_ tag: String) -> String {
        ".\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], what: String, reference: ImageReference)
        throws(RunnerError) -> T
    {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw RunnerError(
                .invalidInput, input: reference.description, problem: "its \(what) is not valid JSON of its kind",
                fix: "check the image at its registry", underlying: error)
        }
    }

    /// Keeps verified bytes (a manifest or an index) as blob `digest`.
    func storeBlob(_ bytes: [UInt8], digest: String) throws(RunnerError) {
        let path = layout.ociBlob(String(digest.dropFirst("sha256:".count)))
        if FilePaths.exists(path) { return }
        try AtomicFile.write(bytes, to: path, mode: 0o644)
    }

    /// Downloads the blobs not in the store yet, at most ``RegistrySettings/concurrentDownloads``
    /// at once; the first failure cancels the rest.
    func download(_ blobs: [OCIDescriptor], client: RegistryClient, progress: ProgressReporter)
        async throws(RunnerError)
    {
        let layout = layout
        let missing = blobs.filter { descriptor in
            guard let hex = descriptor.sha256Hex else { return true }
            return !FilePaths.exists(layout.ociBlob(hex))
        }
        guard !missing.isEmpty else {
            progress.stage("every blob is in the store already")
            return
        }
        let total = missing.reduce(Int64(0)) { $0 + $1.size }
        progress.stage("downloading \(missing.count) blobs, \(total / 1_000_000) MB")
        let limit = max(1, settings.concurrentDownloads)
        let failure: RunnerError? = await withTaskGroup(of: RunnerError?.self) { group in
            var pending = missing[...]
            var running = 0
            var done = 0
            var firstError: RunnerError?
            func startNext() {
                guard let descriptor = pending.popFirst() else { return }
                running += 1
                group.addTask {
                    let hex = descriptor.sha256Hex ?? ""
                    let temporary = layout.ociBlobsDirectory + "/" + Self.temporaryName("blob")
                    do throws(RunnerError) {
                        try await client.fetchBlob(descriptor, into: temporary)
                        guard rename(temporary, layout.ociBlob(hex)) == 0 else {
                            unlink(temporary)
                            return RunnerError.posix(
                                "could not move the blob into place", layout.ociBlob(hex), fix: nil)
                        }
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            for _ in 0..<limit { startNext() }
            while running > 0, let result = await group.next() {
                running -= 1
                if let result {
                    if firstError == nil { firstError = result }
                    group.cancelAll()
                    pending = []
                    continue
                }
                done += 1
                progress.update("downloaded \(done)/\(missing.count) blobs")
                startNext()
            }
            return firstError
        }
        if let failure { throw failure }
        progress.finish("downloaded \(missing.count) blobs")
    }

    /// Applies the layers in order into a staging tree and renames it into place.
    func unpack(
        _ manifest: OCIManifest, manifestHex: String, reference: ImageReference, indexDigest: String?,
        extraBlobs: [String], progress: ProgressReporter
    ) async throws(RunnerError) -> PulledImage {
        let staging = layout.ociTreesDirectory + "/" + Self.temporaryName("incoming-\(manifestHex.prefix(12))")
        let layout = layout
        let userNamespace = userNamespace
        let policy = LayerPolicy(
            applyOwnership: geteuid() == 0, idBase: userNamespace?.base, idCount: userNamespace?.size ?? 65536)
        let layers = manifest.layers
        let configHex = manifest.config.sha256Hex ?? ""
        var finished = false
        defer { if !finished { try? FilePaths.remove(staging) } }
        let contentBytes = try await DedicatedThread.run { () throws(RunnerError) -> Int64 in
            try FilePaths.createDirectory(staging, mode: 0o755)
            let rootfs = staging + "/rootfs"
            guard mkdir(rootfs, 0o755) == 0 else { throw RunnerError.posix("could not create", rootfs, fix: nil) }
            if policy.applyOwnership, let base = policy.idBase {
                guard chown(rootfs, base, base) == 0 else {
                    throw RunnerError.posix("could not chown", rootfs, fix: nil)
                }
            }
            var bytes: Int64 = 0
            for (number, layer) in layers.enumerated() {
                let blob = layout.ociBlob(layer.sha256Hex ?? "")
                progress.update("unpacking layer \(number + 1)/\(layers.count) (\(layer.size / 1_000_000) MB)")
                do throws(ArchiveError) {
                    let summary = try LayerExtractor.apply(blob, onto: rootfs, policy: policy)
                    bytes += summary.contentBytes
                } catch {
                    let converted = RunnerError(archive: error)
                    throw RunnerError(
                        error.isRefusal ? .unsafeInput : .io,
                        input: "\(reference) layer \(number + 1) (\(layer.digest))",
                        problem: "could not be unpacked: \(converted.input): \(converted.problem)",
                        fix: converted.fix ?? "check the image")
                }
            }
            let config = try FilePaths.read(layout.ociBlob(configHex))
            try AtomicFile.write(config, to: staging + "/config.json", mode: 0o644)
            if let userNamespace {
                try AtomicFile.write(
                    userNamespace.description + "\n", to: staging + "/" + ImageOwnership.markerName, mode: 0o644)
            }
            return bytes
        }
        let blobDigests = extraBlobs + [manifest.config.digest] + manifest.layers.map(\.digest)
        let blobBytes = blobDigests.reduce(Int64(0)) { total, digest in
            var st = stat()
            return total + (stat(layout.ociBlob(String(digest.dropFirst(7))), &st) == 0 ? Int64(st.st_size) : 0)
        }
        let now = Self.now()
        let record = PulledImageRecord(
            references: [], digest: "sha256:" + manifestHex, indexDigest: indexDigest,
            platform: settings.platform.description, blobs: blobDigests, size: contentBytes + blobBytes, pulled: now,
            lastUsed: now)
        try record.write(to: staging + "/image.json")
        let tree = layout.ociTree(manifestHex)
        if rename(staging, tree) != 0 {
            guard errno == EEXIST || errno == ENOTEMPTY else {
                throw RunnerError.posix("could not move the unpacked image into place", tree, fix: "check permissions")
            }
            // Another pull of the same manifest finished first: its tree is as good as ours.
            logger.info("tree already unpacked by another pull", metadata: ["tree": "\(tree)"])
        } else {
            finished = true
        }
        guard let image = image(hex: manifestHex) else {
            throw RunnerError(.io, input: tree, problem: "the unpacked image is incomplete", fix: "pull again")
        }
        return try await DedicatedThread.run { () throws(RunnerError) -> PulledImage in
            try self.record(image, as: reference)
        }
    }

    // MARK: Records

    /// Runs `body` holding `.oci/.lock` (records change only under it).
    func locked<T>(_ body: () throws(RunnerError) -> T) throws(RunnerError) -> T {
        try FilePaths.createDirectory(layout.ociDirectory)
        let path = layout.ociDirectory + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RunnerError.posix("could not open the store lock", path, fix: nil) }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw RunnerError.posix("could not lock", path, fix: nil) }
        }
        return try body()
    }

    /// Lists `reference` on `image`'s record (last: the most recent), takes it off any other
    /// tree's (a tag that moved), keeps `blobs` (an index it was reached through) with it, and
    /// marks the image used now.
    func record(_ image: PulledImage, as reference: ImageReference, blobs: [String] = []) throws(RunnerError)
        -> PulledImage
    {
        try locked { () throws(RunnerError) -> PulledImage in
            let name = reference.description
            for other in list()
            where other.manifestDigest != image.manifestDigest && other.record.references.contains(name) {
                var record = other.record
                record.references.removeAll { $0 == name }
                try record.write(to: other.recordPath)
            }
            var record = (try? PulledImageRecord.load(image.recordPath)) ?? image.record
            record.references.removeAll { $0 == name }
            if reference.digest == nil || reference.tag != nil { record.references.append(name) }
            record.blobs += blobs.filter { !record.blobs.contains($0) }
            record.lastUsed = Self.now()
            try record.write(to: image.recordPath)
            return PulledImage(
                reference: reference, manifestDigest: image.manifestDigest, treeDirectory: image.treeDirectory,
                record: record)
        }
    }

    /// Marks `image` used now (a job resolved it, a guest booted it): the budget removes it last.
    public func touch(_ image: PulledImage) throws(RunnerError) {
        try touch(hex: String(image.manifestDigest.dropFirst("sha256:".count)))
    }

    /// Marks the tree of manifest `hex` used now; refuses a tree that is not in the store.
    public func touch(hex: String) throws(RunnerError) {
        guard SHA256Digest.isValidHex(hex) else {
            throw RunnerError(
                .invalidInput, input: hex, problem: "is not the hex of a sha256 manifest digest",
                fix: "name the image by its manifest digest (sha256:<64 hex digits>)")
        }
        let path = layout.ociTree(hex) + "/image.json"
        try locked { () throws(RunnerError) in
            var record = try PulledImageRecord.load(path)
            record.lastUsed = Self.now()
            // A last use lost to a power cut costs nothing but the order of the next eviction.
            try record.write(to: path, durable: false)
        }
    }

    /// Removes the tree `reference` resolves to (a tag, or a digest) and the blobs no other
    /// tree needs. Refuses a tree in `inUse` (tree directories guests boot from) or pinned by
    /// a live holder (a pull of it, a running job: ``pin(_:blobs:holder:)``).
    public func remove(_ reference: ImageReference, inUse: Set<String> = []) throws(RunnerError) {
        guard let image = lookup(reference) else {
            throw RunnerError(
                .notFound, input: reference.description, problem: "is not in the registry image store",
                fix: "see the pulled images with: runner-agent image list")
        }
        guard !inUse.contains(image.treeDirectory) else {
            throw RunnerError(
                .alreadyExists, input: reference.description, problem: "a running guest boots from it",
                fix: "let the job finish (or `ci-nspawn-run gc --all`), then remove it")
        }
        try locked { () throws(RunnerError) in
            let pinned = livePins()
            guard !pinned.trees.contains(String(image.manifestDigest.dropFirst("sha256:".count))) else {
                throw RunnerError(
                    .alreadyExists, input: reference.description,
                    problem: "a job or a pull holds it now (\(layout.ociPinsDirectory))",
                    fix: "let the job or the pull finish, then remove it")
            }
            try removeTree(image)
            collectBlobs(pinned: pinned)
        }
    }

    /// Removes least recently used trees until the store (trees and blobs) fits `maxBytes`,
    /// never one in `keeping` (tree directories: the image just pulled, those guests boot
    /// from) nor one pinned by a live holder (a pull of it, a job that resolved it:
    /// ``pin(_:blobs:holder:)``), whose blobs stay too. Returns the removed images; the store
    /// may stay over budget when everything left is in use.
    @discardableResult
    public func enforceBudget(maxBytes: Int64, keeping: Set<String> = []) throws(RunnerError) -> [PulledImage] {
        try locked { () throws(RunnerError) -> [PulledImage] in
            let pinned = livePins()
            let keeping = keeping.union(pinned.trees.map { layout.ociTree($0) })
            var images = list()
            var removed: [PulledImage] = []
            func total() -> Int64 { images.reduce(Int64(0)) { $0 + $1.record.size } }
            while total() > maxBytes, let victim = images.first(where: { !keeping.contains($0.treeDirectory) }) {
                try removeTree(victim)
                images.removeAll { $0.treeDirectory == victim.treeDirectory }
                removed.append(victim)
                logger.info(
                    "removed image over the cache budget",
                    metadata: ["digest": "\(victim.manifestDigest)", "references": "\(victim.record.references)"])
            }
            if !removed.isEmpty { collectBlobs(pinned: pinned) }
            return removed
        }
    }

    /// Renames the tree aside (so it disappears at once), then deletes it.
    func removeTree(_ image: PulledImage) throws(RunnerError) {
        let doomed = layout.ociTreesDirectory + "/" + Self.temporaryName("removing")
        guard rename(image.treeDirectory, doomed) == 0 else {
            throw RunnerError.posix("could not remove", image.treeDirectory, fix: "check permissions")
        }
        try FilePaths.remove(doomed)
    }

    /// Deletes every blob no remaining tree lists and no live pin names (temporary files of live
    /// pulls stay). Call it holding the lock.
    func collectBlobs(pinned: Pinned) {
        let needed = Set(list().flatMap(\.record.blobs).map { String($0.dropFirst("sha256:".count)) })
            .union(pinned.blobs)
        for entry in FilePaths.entries(of: layout.ociBlobsDirectory) where !entry.hasPrefix(".") {
            if !needed.contains(entry) { unlink(layout.ociBlob(entry)) }
        }
    }
}

extension RegistryImageStore {
    /// The image for `reference` as `policy` (`RUNNER_IMAGE_PULL`) wants it: `missing` pulls
    /// only what the store lacks, `always` asks the registry (a tag that moved is pulled; layers
    /// already here are not downloaded again), `never` uses the store only. Marks it used.
    /// `holder` (a job's owner) pins it (``pin(_:blobs:holder:)``) until it exits or is
    /// released.
    public func resolve(
        _ reference: ImageReference, policy: RunnerConfig.ImagePullPolicy, credentials: RegistryCredentials?,
        holder: ImageHolder? = nil, progress: ProgressReporter = .silent
    ) async throws(RunnerError) -> PulledImage {
        if policy != .always, let image = try await hold(reference, holder: holder) {
            progress.finish("\(reference) is in the store at \(image.manifestDigest)")
            return image
        }
        guard policy != .never else {
            throw RunnerError(
                .notFound, input: reference.description,
                problem: "is not in the image store and RUNNER_IMAGE_PULL=never forbids pulling it",
                fix: "pull it first (runner-agent image pull \(reference)) or set RUNNER_IMAGE_PULL=missing")
        }
        return try await pull(reference, credentials: credentials, holder: holder, progress: progress)
    }

    /// The image `reference` resolves to in the store (no registry asked), pinned for `holder`
    /// and marked used; nil when the store does not have it (or it was removed before the pin).
    public func hold(_ reference: ImageReference, holder: ImageHolder?) async throws(RunnerError) -> PulledImage? {
        guard let found = lookup(reference) else { return nil }
        let hex = String(found.manifestDigest.dropFirst("sha256:".count))
        return try await DedicatedThread.run { () throws(RunnerError) -> PulledImage? in
            let pin = try holder.map { (holder) throws(RunnerError) -> String in
                try self.pin(hex, blobs: found.record.blobs, holder: holder)
            }
            // Pinned: nothing removes it now, unless it went before the pin.
            guard self.image(hex: hex) != nil else {
                if let pin { try? unpin(pin) }
                return nil
            }
            try touch(hex: hex)
            return lookup(reference) ?? found
        }
    }
}

/// What the hook sends `ci-nspawn-run pull` on stdin: one JSON object. The credentials (a
/// job's `credentials:`) never travel on argv and are never logged or written.
public struct RegistryPullRequest: Sendable, Codable {
    public var reference: String
    public var credentials: RegistryCredentials?
    /// The job's owner process (the runner's worker): it pins the image until the job ends.
    /// The helper accepts only a process that may own the caller's guests (``GuestOwner``).
    public var ownerPID: Int32?

    public init(reference: String, credentials: RegistryCredentials? = nil, ownerPID: Int32? = nil) {
        self.reference = reference
        self.credentials = credentials
        self.ownerPID = ownerPID
    }
}

/// What `ci-nspawn-run pull` prints on stdout: one JSON line.
public struct RegistryPullResponse: Sendable, Codable, Hashable {
    /// The reference in normal form (`docker.io/library/node:20`).
    public var reference: String
    /// `sha256:<hex>` of the manifest.
    public var digest: String
    /// The tree directory (``PulledImage/treeDirectory``): `rootfs/`, `config.json`, `image.json`.
    public var tree: String

    public init(reference: String, digest: String, tree: String) {
        self.reference = reference
        self.digest = digest
        self.tree = tree
    }

    public init(_ image: PulledImage) {
        self.init(reference: image.reference.description, digest: image.manifestDigest, tree: image.treeDirectory)
    }
}
