import FoundationEssentials
import Logging
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The host's store of guest base images under ``HostLayout/imagesDirectory``.
///
/// Layout: `<images>/<name>/<digest>/rootfs/` (the tree), `<digest>/manifest.json` (when
/// imported with a manifest) and `<images>/<name>/current`, a symlink to the active
/// `<digest>` that an import replaces with one `rename(2)`. The version that was active before
/// is kept until the next import succeeds; older ones are removed.
///
/// The container hook calls ``resolve(_:)`` (name → rootfs) and ``list()``; the
/// `runner-agent image` commands call ``importArchive(_:name:manifest:progress:)`` and
/// ``remove(_:)``.
public struct ImageStore: Sendable {
    public let layout: HostLayout
    let extractor: any ImageArchiveExtractor
    let logger: Logger
    /// The guests' UID range: an import shifts the new version's owners into it
    /// (``ImageOwnership``); nil leaves them as the archive has them (`RUNNER_GUEST_USERNS=off`).
    public var userNamespace: GuestUserNamespace?

    /// A store rooted at `layout` (tests pass a temporary root).
    public init(
        layout: HostLayout = HostLayout(),
        extractor: any ImageArchiveExtractor = SafeRootfsExtractor(),
        logger: Logger = Logger(label: "runner.images"),
        userNamespace: GuestUserNamespace? = nil
    ) {
        self.layout = layout
        self.extractor = extractor
        self.logger = logger
        self.userNamespace = userNamespace
    }

    /// `<images>/<name>/<digest>`: the version directory of `image` (its rootfs's parent).
    public func versionDirectory(_ image: InstalledImage) -> String {
        layout.imageDirectory(image.name) + "/" + image.digest
    }

    // MARK: Reading (used by the container hook)

    /// The active version of image `name`.
    ///
    /// Throws ``RunnerError/Code/notFound`` naming the available images when `name` is not
    /// imported, and ``RunnerError/Code/invalidInput`` for a malformed name.
    public func resolve(_ name: String) throws(RunnerError) -> InstalledImage {
        try ImageName.validate(name)
        let current = layout.currentImage(name)
        guard let target = SymbolicLink.target(current) else {
            let available = availableNames()
            throw RunnerError(
                .notFound, input: "image '\(name)'",
                problem: "is not in the image store at \(layout.imagesDirectory)"
                    + (available.isEmpty
                        ? " (no images imported)" : " (available: \(available.joined(separator: ", ")))"),
                fix: "import it with: runner-agent image import rootfs-\(name)-VERSION.tar.zst --name \(name)")
        }
        guard SHA256Digest.isValidHex(target), !target.contains("/") else {
            throw RunnerError(
                .integrity, input: current, problem: "points to '\(target)', not to a version directory",
                fix: "re-import the image with runner-agent image import")
        }
        let version = layout.imageDirectory(name) + "/" + target
        let rootfs = version + "/rootfs"
        var isDirectory = false
        guard FilePaths.exists(rootfs, isDirectory: &isDirectory), isDirectory else {
            throw RunnerError(
                .notFound, input: rootfs, problem: "the active version of image '\(name)' has no rootfs",
                fix: "re-import the image with runner-agent image import")
        }
        let manifestPath = version + "/manifest.json"
        let manifest = FilePaths.exists(manifestPath) ? try RootfsManifest.load(manifestPath) : nil
        return InstalledImage(name: name, digest: target, rootfs: rootfs, manifest: manifest)
    }

    /// The tree a guest of image `name` boots from (see ``InstalledImage/rootfs``).
    public func rootfsPath(for name: String) throws(RunnerError) -> String {
        try resolve(name).rootfs
    }

    /// Names in the store that have a `current` link (no checks beyond that; for messages).
    func availableNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.imagesDirectory)) ?? []
        return names.filter { !$0.hasPrefix(".") && SymbolicLink.target(layout.currentImage($0)) != nil }.sorted()
    }

    /// Every image with an active version, sorted by name. Names whose `current` is broken
    /// are skipped (and logged); an absent store is an empty list.
    public func list() throws(RunnerError) -> [InstalledImage] {
        let names: [String]
        do {
            guard FilePaths.exists(layout.imagesDirectory) else { return [] }
            names = try FileManager.default.contentsOfDirectory(atPath: layout.imagesDirectory)
        } catch {
            throw RunnerError(
                .io, input: layout.imagesDirectory, problem: "could not list the image store",
                fix: "check permissions", underlying: error)
        }
        var images: [InstalledImage] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            do {
                images.append(try resolve(name))
            } catch {
                logger.warning("skipping image \(name): \(error.problem)")
            }
        }
        return images
    }

    // MARK: Changing the store

    /// Imports `archive` (a `rootfs-*.tar.zst`) as image `name` and makes it the active version.
    ///
    /// With `manifest`, the archive's sha256 must match the manifest's. Extraction goes into a
    /// temporary directory beside the versions, renamed into place only when complete; then
    /// `current` is switched with one rename. Importing the active version again is a no-op.
    @discardableResult
    public func importArchive(
        _ archive: String,
        name: String,
        manifest manifestPath: String? = nil,
        progress: ProgressReporter = .silent
    ) async throws(RunnerError) -> InstalledImage {
        try ImageName.validate(name)
        var isDirectory = false
        guard FilePaths.exists(archive, isDirectory: &isDirectory), !isDirectory else {
            throw RunnerError(
                .notFound, input: archive, problem: "no such archive",
                fix: "pass the rootfs-<name>-<version>.tar.zst that runner-build rootfs wrote")
        }
        let manifest = try manifestPath.map { (path) throws(RunnerError) in try RootfsManifest.load(path) }

        progress.stage("[1/4] checking \(FilePaths.basename(archive))")
        let digest = try SHA256Digest.hex(ofFile: archive)
        if let manifest, let manifestPath {
            guard manifest.archiveSHA256 == digest else {
                throw RunnerError(
                    .integrity, input: archive,
                    problem: "sha256 \(digest) does not match \(manifest.archiveSHA256) in \(manifestPath)",
                    fix: "download the archive again, or pass the manifest that was written with it")
            }
        }

        let imageDirectory = layout.imageDirectory(name)
        let versionDirectory = imageDirectory + "/" + digest
        try FilePaths.createDirectory(imageDirectory)
        Self.removeAbandoned(in: imageDirectory)
        let previous = try? resolve(name)
        if previous?.digest == digest {
            progress.finish("image \(name) is already at \(digest.prefix(12)); nothing to do")
            return try resolve(name)
        }

        if FilePaths.exists(versionDirectory) {
            progress.stage("[2/4] version \(digest.prefix(12)) is already unpacked; reusing it")
        } else {
            progress.stage("[2/4] unpacking into \(versionDirectory)")
            let staging = imageDirectory + "/.incoming-\(digest.prefix(12))-\(getpid())"
            try FilePaths.remove(staging)
            try FilePaths.createDirectory(staging)
            var finished = false
            defer { if !finished { try? FilePaths.remove(staging) } }
            try await extractor.extract(archive: archive, into: staging + "/rootfs", progress: progress)
            if let manifest {
                try AtomicFile.write(try manifest.encoded(), to: staging + "/manifest.json")
            }
            guard rename(staging, versionDirectory) == 0 else {
                throw RunnerError.posix(
                    "could not move the unpacked image into place", versionDirectory, fix: "check permissions")
            }
            finished = true
        }

        // Before `current` points at it, so no guest boots the version before its owners are shifted.
        try ImageOwnership.ensure(version: versionDirectory, userNamespace: userNamespace, logger: logger)

        progress.stage("[3/4] switching \(name) to \(digest.prefix(12))")
        try switchCurrent(name: name, to: digest)

        progress.stage("[4/4] pruning old versions")
        try prune(name: name, keeping: [digest, previous?.digest].compactMap { $0 })
        let installed = try resolve(name)
        progress.finish("imported \(name) \(digest.prefix(12)) at \(installed.rootfs)")
        logger.info("imported image", metadata: ["name": "\(name)", "digest": "\(digest)"])
        return installed
    }

    /// Removes what an import killed mid-way left in `imageDirectory`: the `current` link's
    /// temporary (`.current.tmp-PID-N`) and unpacking staging (`.incoming-DIGEST-PID`) of
    /// writers that are gone, so a re-run converges on the same tree. A live writer's are kept.
    static func removeAbandoned(in imageDirectory: String) {
        for entry in FilePaths.entries(of: imageDirectory) {
            let writer: Substring
            if entry.hasPrefix(".current.tmp-") {
                writer = entry.dropFirst(".current.tmp-".count).prefix { $0 != "-" }
            } else if entry.hasPrefix(".incoming-") {
                writer = entry.split(separator: "-").last ?? ""
            } else {
                continue
            }
            guard let pid = Int32(writer), !ProcessTable.isAlive(pid, startTime: nil) else { continue }
            try? FilePaths.remove(imageDirectory + "/" + entry)
        }
    }

    /// Removes image `name` and all its versions. `current` goes first, so the hook stops
    /// resolving the name before any tree is deleted.
    public func remove(_ name: String) throws(RunnerError) {
        try ImageName.validate(name)
        let imageDirectory = layout.imageDirectory(name)
        guard FilePaths.exists(imageDirectory) else {
            throw RunnerError(
                .notFound, input: "image '\(name)'", problem: "is not in the image store at \(layout.imagesDirectory)",
                fix: "see the imported images with: runner-agent image list")
        }
        let current = layout.currentImage(name)
        if FilePaths.exists(current), unlink(current) != 0 {
            throw RunnerError.posix("could not remove", current, fix: "check permissions")
        }
        let doomed = layout.imagesDirectory + "/.removing-\(name)-\(getpid())"
        guard rename(imageDirectory, doomed) == 0 else {
            throw RunnerError.posix("could not remove", imageDirectory, fix: "check permissions")
        }
        try FilePaths.remove(doomed)
        logger.info("removed image", metadata: ["name": "\(name)"])
    }

    /// Points `<name>/current` at `<digest>` with a symlink made beside it and renamed over it.
    func switchCurrent(name: String, to digest: String) throws(RunnerError) {
        let current = layout.currentImage(name)
        let temporary = FilePaths.temporarySibling(of: current)
        guard symlink(digest, temporary) == 0 else {
            throw RunnerError.posix("could not create", temporary, fix: "check permissions")
        }
        guard rename(temporary, current) == 0 else {
            unlink(temporary)
            throw RunnerError.posix("could not switch", current, fix: "check permissions")
        }
        let directory = open(layout.imageDirectory(name), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }

    /// Removes every version directory and leftover staging directory of `name` except `keeping`.
    func prune(name: String, keeping: [String]) throws(RunnerError) {
        let imageDirectory = layout.imageDirectory(name)
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: imageDirectory)
        } catch {
            throw RunnerError(.io, input: imageDirectory, problem: "could not list", underlying: error)
        }
        for entry in entries where entry != "current" && !keeping.contains(entry) {
            // Staging of other imports is theirs while they live (``removeAbandoned(in:)``).
            if SHA256Digest.isValidHex(entry) {
                logger.info("removing old image version", metadata: ["name": "\(name)", "version": "\(entry)"])
                try FilePaths.remove(imageDirectory + "/" + entry)
            }
        }
    }
}
