import Foundation
import Logging
import RunnerCore
import RunnerSystem

/// Writes a baked tree as a `.tar.zst`. The baker's default is our libarchive writer in its
/// full-fidelity mode; the protocol keeps the pipeline independent of it.
public protocol RootfsArchiveWriter: Sendable {
    /// Archives the contents of `tree` (entries relative to it, sorted) into `archive`, every
    /// mtime clamped to `sourceDateEpoch`.
    func write(tree: String, to archive: String, sourceDateEpoch: Int64, progress: ProgressReporter)
        async throws(RunnerError)
}

/// What a bake produced.
public struct RootfsBakeResult: Sendable, Hashable {
    /// `OUT/rootfs-<name>-<version>.tar.zst`.
    public var archive: String
    /// `OUT/rootfs-<name>-<version>.manifest.json`.
    public var manifestPath: String
    public var manifest: RootfsManifest
    /// True when an earlier bake with the same recipe digest was reused.
    public var reused: Bool
}

/// `runner-build rootfs`: recipe → mmdebstrap tree → guest-ready → `.tar.zst` + manifest.
public struct RootfsBaker: Sendable {
    /// Units masked in every guest. Some fail or idle in a container and would leave it
    /// `degraded` or busy (timers that start apt, fstrim, e2scrub; gettys on a passive console;
    /// firstboot, remount-fs); the rest cost boot time and serve no job (logins, utmp, the
    /// persistent journal flush, hugepages and fuse control mounts).
    public static let defaultMaskedUnits = [
        "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
        "e2scrub_reap.service", "fstrim.timer", "console-getty.service", "getty@.service",
        "systemd-firstboot.service", "systemd-timesyncd.service", "systemd-networkd-wait-online.service",
        "systemd-resolved.service", "systemd-remount-fs.service", "systemd-sysusers.service",
        "systemd-logind.service", "systemd-user-sessions.service", "systemd-update-utmp.service",
        "systemd-update-utmp-runlevel.service", "systemd-journal-flush.service", "dev-hugepages.mount",
        "sys-fs-fuse-connections.mount",
    ]

    /// Bumped whenever the pipeline changes what a recipe produces; part of the recipe digest,
    /// so a changed pipeline never reuses an old bake.
    public static let pipelineVersion = "rootfs-bake-7"

    public var runner: any CommandRunner
    public var writer: any RootfsArchiveWriter
    public var mmdebstrap: Mmdebstrap
    public var logger: Logger
    /// The effective user id; root is required (`--mode=root`).
    public var effectiveUserID: UInt32

    public init(
        runner: any CommandRunner = SystemCommandRunner(),
        writer: any RootfsArchiveWriter = LibArchiveRootfsWriter(),
        mmdebstrap: Mmdebstrap = Mmdebstrap(),
        logger: Logger = Logger(label: "runner.rootfs"),
        effectiveUserID: UInt32 = geteuid()
    ) {
        self.runner = runner
        self.writer = writer
        self.mmdebstrap = mmdebstrap
        self.logger = logger
        self.effectiveUserID = effectiveUserID
    }

    /// Options for one bake.
    public struct Options: Sendable, Hashable {
        public var version: String
        public var outputDirectory: String
        public var sourceDateEpoch: Int64
        /// Bake even when an earlier output with the same digest exists.
        public var force: Bool = false

        public init(version: String, outputDirectory: String, sourceDateEpoch: Int64, force: Bool = false) {
            self.version = version
            self.outputDirectory = outputDirectory
            self.sourceDateEpoch = sourceDateEpoch
            self.force = force
        }
    }

    /// The file names a bake of `recipe` at `version` writes into the output directory.
    public static func outputNames(name: String, version: String) -> (archive: String, manifest: String) {
        ("rootfs-\(name)-\(version).tar.zst", "rootfs-\(name)-\(version).manifest.json")
    }

    /// The customize hooks that make the tree guest-ready, in order: overlay, the recipe's
    /// own commands, then no host identity (`/etc/hostname`, `/etc/resolv.conf`), an empty
    /// `/etc/machine-id`, and masked units.
    public static func customizeHooks(for recipe: Recipe) -> [String] {
        var hooks: [String] = []
        if let overlay = recipe.overlay {
            let source = absolute(recipe.directory + "/" + overlay)
            hooks.append("cp -R --no-preserve=ownership -T -- \(Command.shellQuoted(source)) \"$1\"")
        }
        hooks += recipe.customize
        hooks.append("rm -f \"$1/etc/hostname\" \"$1/etc/resolv.conf\" && : > \"$1/etc/machine-id\"")
        let units = defaultMaskedUnits + recipe.maskedUnits.filter { !defaultMaskedUnits.contains($0) }
        hooks.append(
            "mkdir -p \"$1/etc/systemd/system\" && for u in \(units.joined(separator: " ")); do "
                + "ln -sfn /dev/null \"$1/etc/systemd/system/$u\"; done")
        return hooks
    }

    /// The mmdebstrap invocation for `recipe`, writing a directory tree at `target`.
    public func mmdebstrapCommand(for recipe: Recipe, target: String, sourceDateEpoch: Int64) -> Command {
        var options = Mmdebstrap.BuildOptions(
            variant: recipe.variant, architecture: recipe.architecture, suite: recipe.suite, target: target,
            mirror: recipe.effectiveMirror)
        options.components = recipe.components
        options.packages = recipe.packages
        if recipe.snapshot != nil {
            options.aptOptions.append("Acquire::Check-Valid-Until \"false\"")
        }
        options.dpkgOptions =
            recipe.pathExcludes.map { "path-exclude=\($0)" }
            + recipe.pathIncludes.map { "path-include=\($0)" }
        if !recipe.packages.isEmpty {
            // Fail fast on a missing package: right after the essential set is extracted, with
            // the chroot's apt lists (APT_CONFIG), instead of after installing it.
            options.extractHooks.append(
                "apt-get --simulate --quiet=2 install " + recipe.packages.joined(separator: " ") + " >/dev/null")
        }
        options.customizeHooks = Self.customizeHooks(for: recipe)
        options.sourceDateEpoch = sourceDateEpoch
        return mmdebstrap.build(options)
    }

    /// sha256 over everything that decides the image's content: the pipeline version, the
    /// recipe file, every overlay file (path, type, mode, content), and `SOURCE_DATE_EPOCH`.
    public static func recipeDigest(_ recipe: Recipe, sourceDateEpoch: Int64) throws(RunnerError) -> String {
        var text = "\(pipelineVersion)\nsource-date-epoch \(sourceDateEpoch)\n"
        let recipeFile = recipe.directory + "/" + Recipe.fileName
        text += "recipe \(SHA256Digest.hex(of: try FilePaths.read(recipeFile)))\n"
        if let overlay = recipe.overlay {
            let root = recipe.directory + "/" + overlay
            let entries: [String]
            do {
                entries = try FileManager.default.subpathsOfDirectory(atPath: root).sorted()
            } catch {
                throw RunnerError(.io, input: root, problem: "could not list the overlay", underlying: error)
            }
            for entry in entries {
                let path = root + "/" + entry
                var st = stat()
                guard lstat(path, &st) == 0 else { throw RunnerError.posix("could not stat", path, fix: nil) }
                let mode = String(st.st_mode & 0o7777, radix: 8)
                switch st.st_mode & S_IFMT {
                case S_IFDIR: text += "dir \(mode) \(entry)\n"
                case S_IFLNK:
                    let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? ""
                    text += "link \(entry) -> \(target)\n"
                default:
                    text += "file \(mode) \(SHA256Digest.hex(of: try FilePaths.read(path))) \(entry)\n"
                }
            }
        }
        return SHA256Digest.hex(of: Array(text.utf8))
    }

    /// Bakes `recipe` into `options.outputDirectory`, or reuses an earlier identical bake.
    public func bake(_ recipe: Recipe, options: Options, progress: ProgressReporter) async throws(RunnerError)
        -> RootfsBakeResult
    {
        let out = options.outputDirectory
        let names = Self.outputNames(name: recipe.name, version: options.version)
        let archivePath = out + "/" + names.archive
        let manifestPath = out + "/" + names.manifest
        let digest = try Self.recipeDigest(recipe, sourceDateEpoch: options.sourceDateEpoch)

        if !options.force, let earlier = reusable(manifestPath: manifestPath, archivePath: archivePath, digest: digest)
        {
            progress.finish(
                "reusing \(archivePath): recipe digest \(digest.prefix(12)) is unchanged (pass --force to bake again)")
            return RootfsBakeResult(archive: archivePath, manifestPath: manifestPath, manifest: earlier, reused: true)
        }

        try preflight(outputDirectory: out)
        let work = out + "/.rootfs-\(recipe.name)-\(options.version).work-\(getpid())"
        try FilePaths.remove(work)
        try FilePaths.createDirectory(work)
        defer { try? FilePaths.remove(work) }
        let tree = work + "/tree"

        progress.stage(
            "[1/4] mmdebstrap: \(recipe.suite)/\(recipe.architecture) \(recipe.variant) + \(recipe.packages.count) packages from \(recipe.effectiveMirror)"
        )
        let command = mmdebstrapCommand(for: recipe, target: tree, sourceDateEpoch: options.sourceDateEpoch)
        logger.debug("mmdebstrap", metadata: ["command": "\(command)"])
        let ticker = Task {
            let start = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                progress.update("mmdebstrap: \((ContinuousClock.now - start).components.seconds) s")
            }
        }
        let result: CommandResult
        do {
            result = try await runner.run(command)
            ticker.cancel()
        } catch {
            ticker.cancel()
            throw error
        }
        guard result.status.isSuccess else {
            throw Self.mmdebstrapError(command, recipe: recipe, result: result)
        }

        try Self.normaliseAptPartialDirectories(tree: tree)

        progress.stage("[2/4] recording installed packages")
        let query = DpkgQuery().installedPackages(tree: tree)
        let packages = DpkgQuery.parseInstalled(try await runner.output(query))
        let builder =
            (try? await runner.output(mmdebstrap.version()))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "mmdebstrap"

        progress.stage("[3/4] writing \(names.archive) (mtimes clamped to \(options.sourceDateEpoch))")
        let temporaryArchive = work + "/" + names.archive
        try await writer.write(
            tree: tree, to: temporaryArchive, sourceDateEpoch: options.sourceDateEpoch, progress: progress)
        let sha = try SHA256Digest.hex(ofFile: temporaryArchive)
        var st = stat()
        guard stat(temporaryArchive, &st) == 0 else {
            throw RunnerError.posix("could not stat", temporaryArchive, fix: nil)
        }

        progress.stage("[4/4] writing \(names.manifest)")
        let manifest = RootfsManifest(
            name: recipe.name, version: options.version, recipeDigest: digest, suite: recipe.suite,
            architecture: recipe.architecture, variant: recipe.variant, mirror: recipe.effectiveMirror,
            snapshot: recipe.snapshot, sourceDateEpoch: options.sourceDateEpoch, builder: builder,
            archive: names.archive, archiveSHA256: sha, archiveSize: Int64(st.st_size), packages: packages)
        // The archive goes into place first: a manifest never names an archive that is not there.
        guard rename(temporaryArchive, archivePath) == 0 else {
            throw RunnerError.posix("could not move the archive into place", archivePath, fix: "check \(out)")
        }
        try AtomicFile.write(try manifest.encoded(), to: manifestPath)
        progress.finish(
            "baked \(archivePath) (\(st.st_size / 1_000_000) MB, \(packages.count) packages, sha256 \(sha.prefix(12)))")
        return RootfsBakeResult(archive: archivePath, manifestPath: manifestPath, manifest: manifest, reused: false)
    }

    /// apt's cleanup (after the customize hooks) hands its `partial` directories to `_apt` only
    /// when `_apt` can reach the tree, which depends on the modes of the output directory's
    /// parents; they are set to root here so the archive does not depend on where it was baked.
    static func normaliseAptPartialDirectories(tree: String) throws(RunnerError) {
        for relative in ["/var/cache/apt/archives/partial", "/var/lib/apt/lists/partial"] {
            let path = tree + relative
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { continue }
            guard lchown(path, 0, 0) == 0 else {
                throw RunnerError.posix("could not change the owner of", path, fix: nil)
            }
        }
    }

    /// The earlier manifest when it was made from the same digest and its archive still has
    /// the recorded sha256.
    func reusable(manifestPath: String, archivePath: String, digest: String) -> RootfsManifest? {
        guard FilePaths.exists(manifestPath), FilePaths.exists(archivePath),
            let manifest = try? RootfsManifest.load(manifestPath), manifest.recipeDigest == digest,
            let sha = try? SHA256Digest.hex(ofFile: archivePath), sha == manifest.archiveSHA256
        else { return nil }
        return manifest
    }

    /// Root (mmdebstrap's root mode chroots and makes device nodes) and a writable output directory.
    func preflight(outputDirectory out: String) throws(RunnerError) {
        guard effectiveUserID == 0 else {
            throw RunnerError(
                .permission, input: "runner-build rootfs",
                problem:
                    "needs root: mmdebstrap --mode=root chroots into the tree and keeps ownership and device nodes",
                fix: "run it as root (sudo runner-build rootfs …)")
        }
        do {
            try FilePaths.createDirectory(out)
        } catch {
            throw RunnerError(
                .io, input: out, problem: "the output directory cannot be created (\(error.problem))",
                fix: "pass --out a directory you can write to")
        }
        let probe = out + "/.rootfs-write-probe-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw RunnerError(
                .io, input: out, problem: "the output directory is not writable: \(reason)",
                fix: "pass --out a directory you can write to")
        }
        close(fd)
        unlink(probe)
    }

    /// An mmdebstrap failure with apt's `E:` lines up front (the tail of stderr otherwise).
    static func mmdebstrapError(_ command: Command, recipe: Recipe, result: CommandResult) -> RunnerError {
        let lines = (result.standardError + "\n" + result.standardOutput).split(separator: "\n").map(String.init)
        let aptErrors = lines.filter {
            $0.hasPrefix("E: ") && !$0.contains("mmdebstrap") && !$0.hasPrefix("E: apt-get")
        }
        let shown = aptErrors.isEmpty ? Array(lines.suffix(20)) : aptErrors
        var fix = "check the packages, suite and mirror in \(recipe.directory)/\(Recipe.fileName)"
        if aptErrors.contains(where: { $0.contains("Unable to locate package") }) {
            fix = "remove or correct the package in \(recipe.directory)/\(Recipe.fileName) (packages = …)"
        }
        return RunnerError(
            .commandFailed, input: "\(recipe.directory)/\(Recipe.fileName)",
            problem: "mmdebstrap failed with \(result.status):\n" + shown.joined(separator: "\n"), fix: fix)
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }
}
