import FoundationEssentials
import Logging
import RunnerArchive
import RunnerCore
import RunnerImages
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent install`: turns a host into a runner host, one converging step at a time.
///
/// Steps, in order: `release` (unpack and verify the bundle into `releases/<version>`, switch
/// `current`), `host-files` (units, scripts, `ci-nspawn-run`, `runner-agent` on `PATH`), `runner-user`, `schedulers` (the
/// runner user may not use cron or at), `runner-package` (the pinned GitHub runner: cached
/// download, sha256, safe extraction), `work-directory`, `mounts` (work and externals on
/// `nosuid,nodev` bind mounts), `images` (guest images into the image store), `sudoers` (the runner user may run
/// `ci-nspawn-run` and nothing else), `systemd` (enable `runner.service`, reload systemd when it
/// runs) and `marker`, written last and atomically. Killing the installer anywhere and running
/// it again converges to the same host.
public struct Installer: Sendable {
    public var layout: HostLayout
    public var settings: InstallSettings
    /// The bundle to install, or nil to keep the release `current` points at.
    public var bundle: String?
    public var commandRunner: any CommandRunner
    public var curl: Curl
    public var unpacker: any ReleaseUnpacker
    public var imageStore: ImageStore
    public var logger: Logger
    /// Whether systemd runs this host (then units are reloaded and runner.service started).
    public var systemdRunning: Bool

    public init(
        layout: HostLayout, settings: InstallSettings, bundle: String?, commandRunner: any CommandRunner,
        logger: Logger, curl: Curl = Curl(), unpacker: any ReleaseUnpacker = ManifestReleaseUnpacker(),
        imageStore: ImageStore? = nil
    ) {
        self.layout = layout
        self.settings = settings
        self.bundle = bundle
        self.commandRunner = commandRunner
        self.curl = curl
        self.unpacker = unpacker
        self.imageStore =
            imageStore ?? ImageStore(layout: layout, logger: logger, userNamespace: settings.guestUserNamespace)
        self.logger = logger
        self.systemdRunning = layout.root == "/" && FilePaths.exists("/run/systemd/system")
    }

    /// Files the release provides and where they go on the host (release path, host path, mode).
    var hostFiles: [(String, String, UInt32)] {
        [
            ("runner.service", layout.systemdUnitDirectory + "/runner.service", 0o644),
            ("runner-install.service", layout.systemdUnitDirectory + "/runner-install.service", 0o644),
            ("bootstrap.sh", layout.bootstrapScript, 0o755),
            ("runner-service.sh", layout.serviceScript, 0o755),
            ("container-hooks.sh", layout.containerHooksScript, 0o755),
        ]
    }

    /// The host path (as the host sees it, without a test root) `ci-nspawn-run` and
    /// `/usr/local/bin/runner-agent` link to.
    static let agentInCurrentRelease = "/usr/local/lib/runner/current/bin/runner-agent"
    static let hostUnitPath = "/etc/systemd/system/runner.service"
    static let hostGuestHelper = "/usr/local/bin/ci-nspawn-run"
    static let hostAgentCommand = "/usr/local/bin/runner-agent"

    var wantsLink: String { layout.systemdUnitDirectory + "/multi-user.target.wants/runner.service" }
    var packageStamp: String { layout.runnerDirectory + "/.runner-package-sha256" }
    var sudoersContent: String { HostFiles.sudoers(user: settings.user) }

    /// The steps, in order.
    public var steps: [InstallStep] {
        [
            releaseStep, hostFilesStep, userStep, schedulersStep, packageStep, workDirectoryStep, mountsStep,
            imagesStep, sudoersStep, systemdStep, markerStep,
        ]
    }

    /// The version `current` points at, or nil.
    var currentVersion: String? {
        guard let target = SymbolicLink.target(layout.currentRelease) else { return nil }
        let version = FilePaths.basename(target)
        return FilePaths.exists(layout.releaseDirectory(version) + "/MANIFEST.json") ? version : nil
    }

    // MARK: release

    var releaseStep: InstallStep {
        let bundle = self.bundle
        return InstallStep(
            "release",
            bundle.map {
                "unpack and verify \(FilePaths.basename($0)) into \(layout.releasesDirectory), switch current"
            }
                ?? "keep the release current points at",
            isDone: { () throws(RunnerError) in
                guard let version = currentVersion else { return false }
                let installed = try FilePaths.read(layout.releaseDirectory(version) + "/MANIFEST.json")
                if let checkout = unpacker as? CheckoutRelease { return try checkout.manifest().encoded() == installed }
                guard let bundle else { return true }
                return try bundleManifest(bundle) == installed
            },
            apply: { () throws(RunnerError) in
                guard let bundle = bundle ?? (unpacker as? CheckoutRelease)?.checkout else {
                    throw RunnerError(
                        .notFound, input: layout.currentRelease, problem: "no release is installed",
                        fix: "run runner-agent install --bundle runner-bundle-<version>-linux-<arch>.tar.gz")
                }
                try FilePaths.createDirectory(layout.releasesDirectory)
                HostFiles.sweepLeftovers(in: layout.releasesDirectory)
                HostFiles.sweepLeftovers(in: layout.libDirectory)
                let staging = FilePaths.temporarySibling(of: layout.releasesDirectory + "/bundle")
                var keepStaging = false
                defer { if !keepStaging { try? FilePaths.remove(staging) } }
                let version = try unpacker.unpack(bundle, into: staging)
                let target = layout.releaseDirectory(version)
                let manifest = BundleManifest.fileName
                if FilePaths.exists(target)
                    && (try? FilePaths.read(target + "/" + manifest)) != (try? FilePaths.read(staging + "/" + manifest))
                {
                    // Same version, other content (a rebuilt checkout): set the old tree aside.
                    let aside = FilePaths.temporarySibling(of: target)
                    guard rename(target, aside) == 0 else {
                        throw RunnerError.posix("could not move the old release aside", target, fix: nil)
                    }
                    try FilePaths.remove(aside)
                }
                if !FilePaths.exists(target) {
                    guard rename(staging, target) == 0 else {
                        throw RunnerError.posix("could not move the release into place", target, fix: nil)
                    }
                    keepStaging = true
                }
                try HostFiles.symlink(layout.currentRelease, to: "releases/" + version)
                logger.info("release installed", metadata: ["version": "\(version)"])
            })
    }

    func bundleManifest(_ bundle: String) throws(RunnerError) -> [UInt8] {
        do throws(ArchiveError) {
            return try ArchiveReader.readMember("MANIFEST.json", from: bundle, limit: 4 << 20)
        } catch {
            throw RunnerError(
                .integrity, input: bundle, problem: "has no readable MANIFEST.json (\(error))",
                fix: "use a bundle written by runner-build bundle")
        }
    }

    // MARK: host files

    var hostFilesStep: InstallStep {
        InstallStep(
            "host-files", "install units, scripts, \(Installer.hostGuestHelper) and \(Installer.hostAgentCommand)",
            isDone: { () throws(RunnerError) in
                for (source, target, mode) in hostFiles {
                    guard let bytes = try? FilePaths.read(layout.currentRelease + "/" + source),
                        HostFiles.matches(target, bytes: bytes, mode: mode)
                    else { return false }
                }
                return SymbolicLink.target(layout.guestHelper) == Installer.agentInCurrentRelease
                    && SymbolicLink.target(layout.agentCommand) == Installer.agentInCurrentRelease
            },
            apply: { () throws(RunnerError) in
                for directory in [
                    layout.libDirectory, layout.systemdUnitDirectory, FilePaths.parent(of: layout.guestHelper),
                ] {
                    try FilePaths.createDirectory(directory)
                    HostFiles.sweepLeftovers(in: directory)
                }
                for (source, target, mode) in hostFiles {
                    try HostFiles.install(
                        try FilePaths.read(layout.currentRelease + "/" + source), to: target, mode: mode)
                }
                try HostFiles.symlink(layout.guestHelper, to: Installer.agentInCurrentRelease)
                try HostFiles.symlink(layout.agentCommand, to: Installer.agentInCurrentRelease)
            })
    }

    // MARK: runner user

    var userStep: InstallStep {
        let user = settings.user
        let home = "/home/" + user
        return InstallStep(
            "runner-user", "create the system user \(user)",
            isDone: {
                guard let entry = PasswdFile.lookup(user, layout: layout),
                    PasswdFile.entries(of: user, layout: layout).values.allSatisfy({ $0 }),
                    !PasswdFile.hasLocks(layout: layout)
                else { return false }
                var st = stat()
                return lstat(layout.path(home), &st) == 0 && st.st_uid == entry.uid && st.st_gid == entry.gid
                    && RunnerOwnedFiles.isHandedOver(layout.path(home), mode: 0o750, uid: entry.uid)
            },
            apply: { () throws(RunnerError) in
                PasswdFile.clearStaleLocks(layout: layout)
                let entries = PasswdFile.entries(of: user, layout: layout)
                if entries.values.contains(true) && entries.values.contains(false) {
                    // A useradd killed halfway: forget the half-made user and make it again.
                    logger.warning("repairing a half-created user", metadata: ["user": "\(user)"])
                    try PasswdFile.removeEntries(of: user, layout: layout)
                }
                if PasswdFile.lookup(user, layout: layout) == nil {
                    var options = Useradd.SystemUserOptions(name: user, home: home, layout: layout)
                    options.existingGroup = PasswdFile.hasGroup(user, layout: layout)
                    let command = Useradd().systemUser(options)
                    try await commandRunner.run(command).checked(command)
                }
                guard let entry = PasswdFile.lookup(user, layout: layout) else {
                    throw RunnerError(
                        .internal, input: layout.path("/etc/passwd"), problem: "has no \(user) after useradd",
                        fix: "check that /etc/passwd is the user database of this host")
                }
                try RunnerOwnedFiles.handOverDirectory(layout.path(home), mode: 0o750, uid: entry.uid, gid: entry.gid)
            })
    }

    // MARK: runner package

    var cachedTarball: String { layout.cacheDirectory + "/" + FilePaths.basename(settings.tarballURL) }

    var packageStep: InstallStep {
        InstallStep(
            "runner-package", "GitHub runner \(settings.runnerVersion) in \(layout.runnerDirectory)",
            isDone: {
                // Read by descriptor: the runner user owns the directory (a FIFO would hang a read).
                guard let directory = try? RunnerOwnedFiles.openDirectory(layout.runnerDirectory) else { return false }
                defer { close(directory) }
                let uid = PasswdFile.lookup(settings.user, layout: layout)?.uid ?? 0
                guard
                    case .success(let stamp?) = RunnerOwnedFiles.readRegularFile(
                        in: directory, FilePaths.basename(packageStamp), owner: uid, limit: 4096)
                else { return false }
                return stamp == Array((settings.tarballSHA256 + "\n").utf8)
                    && FilePaths.exists(layout.runnerDirectory + "/config.sh")
            },
            apply: { () throws(RunnerError) in
                guard let entry = PasswdFile.lookup(settings.user, layout: layout) else {
                    throw RunnerError(
                        .notFound, input: "RUNNER_USER", problem: "user \(settings.user) does not exist",
                        fix: "run the runner-user step first")
                }
                try await download(settings.tarballURL, to: cachedTarball, sha256: settings.tarballSHA256)
                HostFiles.sweepLeftovers(in: FilePaths.parent(of: layout.runnerDirectory))
                let staged: StagedExtraction
                do throws(ArchiveError) {
                    staged = try ArchiveExtractor.stage(cachedTarball, for: layout.runnerDirectory, policy: .default)
                } catch {
                    throw RunnerError(
                        .unsafeInput, input: cachedTarball, problem: "could not be unpacked safely: \(error)",
                        fix: "check RUNNER_TARBALL_URL and RUNNER_TARBALL_SHA256")
                }
                // Keep the runner's registration and settings across a new package, read by
                // descriptor from the runner-owned directory (see keepRunnerFiles).
                for (name, bytes) in try keepRunnerFiles(owner: entry.uid) {
                    try AtomicFile.write(bytes, to: staged.path + "/" + name, mode: 0o600)
                }
                try AtomicFile.write(settings.tarballSHA256 + "\n", to: staged.path + "/.runner-package-sha256")
                guard chmod(staged.path, 0o755) == 0 else {
                    throw RunnerError.posix("could not set the mode of", staged.path, fix: nil)
                }
                let chown = Chown().recursive(uid: entry.uid, gid: entry.gid, staged.path)
                try await commandRunner.run(chown).checked(chown)
                if systemdRunning {
                    // The externals mount sits in the tree being replaced: unmount it first (the
                    // mounts step mounts the new one).
                    let name = MountUnits.unitName(for: HostLayout().runnerDirectory + "/externals")
                    _ = try? await commandRunner.run(Systemctl().stop(name, .init(block: true)))
                }
                do throws(ArchiveError) {
                    try staged.commit(replacingExisting: true)
                } catch {
                    throw RunnerError(.io, input: layout.runnerDirectory, problem: "could not be replaced: \(error)")
                }
            })
    }

    /// The runner files kept across a package upgrade.
    static let keptRunnerFiles = [".runner", ".credentials", ".credentials_rsaparams", ".env", ".path"]

    /// The kept runner files of the current package, read without following anything the runner
    /// user planted: the package directory opened with `O_NOFOLLOW` from its root-owned parent,
    /// each file with `openat(O_NOFOLLOW|O_NONBLOCK)` and kept only when it is a regular file
    /// owned by the runner user or root, with one link, of at most 1 MiB. Anything else is
    /// skipped with a warning naming it, not refused: the runner user can plant such a file, and
    /// refusing would let it stop every upgrade; skipping costs it only its own registration
    /// (the service registers again).
    func keepRunnerFiles(owner: uid_t) throws(RunnerError) -> [(String, [UInt8])] {
        guard let directory = try RunnerOwnedFiles.openDirectory(layout.runnerDirectory) else { return [] }
        defer { close(directory) }
        var kept: [(String, [UInt8])] = []
        for name in Self.keptRunnerFiles {
            switch RunnerOwnedFiles.readRegularFile(in: directory, name, owner: owner) {
            case .success(let bytes?): kept.append((name, bytes))
            case .success(nil): break
            case .failure(let refusal):
                logger.warning(
                    "not keeping a runner file across the upgrade",
                    metadata: ["file": "\(layout.runnerDirectory)/\(name)", "reason": "\(refusal)"])
            }
        }
        return kept
    }

    /// Downloads `url` to `path` unless `path` already has `sha256`; checks the digest.
    func download(_ url: String, to path: String, sha256: String) async throws(RunnerError) {
        let download = CachedDownload(layout: layout, curl: curl, commandRunner: commandRunner, logger: logger)
        try await download.fetch(url, to: path, sha256: sha256)
    }

    // MARK: work directory

    /// The runner's work directory on this host (RUNNER_WORK_DIR, or its default, under the root).
    var workDirectory: String { layout.path(settings.workDirectory) }

    var workDirectoryStep: InstallStep {
        InstallStep(
            "work-directory", "\(workDirectory) owned by \(settings.user)",
            isDone: {
                guard let entry = PasswdFile.lookup(settings.user, layout: layout) else { return false }
                return RunnerOwnedFiles.isHandedOver(workDirectory, mode: 0o750, uid: entry.uid)
            },
            apply: { () throws(RunnerError) in
                guard let entry = PasswdFile.lookup(settings.user, layout: layout) else {
                    throw RunnerError(.notFound, input: "RUNNER_USER", problem: "user \(settings.user) does not exist")
                }
                // By descriptor, no symlink anywhere: RUNNER_WORK_DIR may lie under a directory
                // the runner user owns.
                try RunnerOwnedFiles.handOverDirectory(workDirectory, mode: 0o750, uid: entry.uid, gid: entry.gid)
            })
    }

    // MARK: schedulers

    /// The deny lists of cron and at: a job must not leave a process that starts later, between
    /// jobs, where it could read the next registration. Written whether or not cron and at are
    /// installed (a deny list without its tool is inert, and one installed later obeys it).
    var schedulerDenyFiles: [String] { [layout.path("/etc/cron.deny"), layout.path("/etc/at.deny")] }

    /// Whether the deny list at `path` names `user` on a line of its own.
    static func denies(_ path: String, user: String) -> Bool {
        guard let bytes = try? FilePaths.read(path) else { return false }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").contains { $0.trimmedWhitespace == user }
    }

    var schedulersStep: InstallStep {
        let user = settings.user
        return InstallStep(
            "schedulers", "deny \(user) cron and at",
            isDone: { schedulerDenyFiles.allSatisfy { Self.denies($0, user: user) } },
            apply: { () throws(RunnerError) in
                // What a killed run left: only our own temporaries (/etc holds others' files).
                let etc = layout.path("/etc")
                for name in FilePaths.entries(of: etc)
                where name.hasPrefix(".cron.deny.tmp-") || name.hasPrefix(".at.deny.tmp-") {
                    unlink(etc + "/" + name)
                }
                for path in schedulerDenyFiles where !Self.denies(path, user: user) {
                    var text = (try? FilePaths.read(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
                    if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
                    try AtomicFile.write(text + user + "\n", to: path, mode: 0o644)
                }
            })
    }

    // MARK: mounts

    /// The host paths (without a test root) of the directories mounted nosuid,nodev.
    var nosuidDirectories: [String] {
        [settings.workDirectory, HostLayout().runnerDirectory + "/externals"]
    }

    var mountsDropIn: String { layout.systemdUnitDirectory + "/runner.service.d/10-mounts.conf" }

    /// The mount units, the drop-in and the enable links, each with its content.
    var mountFiles: [(path: String, text: String)] {
        nosuidDirectories.map { directory in
            (
                layout.systemdUnitDirectory + "/" + MountUnits.unitName(for: directory),
                MountUnits.unitText(for: directory)
            )
        } + [(mountsDropIn, MountUnits.dropInText(for: nosuidDirectories))]
    }

    func mountWantsLink(_ directory: String) -> (link: String, target: String) {
        let name = MountUnits.unitName(for: directory)
        return (layout.systemdUnitDirectory + "/multi-user.target.wants/" + name, "/etc/systemd/system/" + name)
    }

    var mountsStep: InstallStep {
        InstallStep(
            "mounts", nosuidDirectories.joined(separator: " and ") + " on nosuid,nodev bind mounts",
            isDone: { () throws(RunnerError) in try mountsProblem() == nil },
            apply: { () throws(RunnerError) in
                for directory in nosuidDirectories { try MountUnits.check(directory) }
                try FilePaths.createDirectory(FilePaths.parent(of: mountsDropIn))
                for directory in [
                    layout.systemdUnitDirectory, FilePaths.parent(of: mountsDropIn),
                    layout.systemdUnitDirectory + "/multi-user.target.wants",
                ] where FilePaths.exists(directory) {
                    HostFiles.sweepLeftovers(in: directory)
                }
                for (path, text) in mountFiles {
                    try HostFiles.install(Array(text.utf8), to: path, mode: 0o644)
                }
                for directory in nosuidDirectories {
                    let (link, target) = mountWantsLink(directory)
                    try HostFiles.symlink(link, to: target)
                }
                if systemdRunning {
                    let reload = Systemctl().daemonReload()
                    try await commandRunner.run(reload).checked(reload)
                    for directory in nosuidDirectories {
                        let start = Systemctl().startIgnoringOrder(MountUnits.unitName(for: directory))
                        try await commandRunner.run(start).checked(
                            start, fix: "check `journalctl -u \(start.arguments.last ?? "")`")
                    }
                }
            }, problem: { () throws(RunnerError) in try mountsProblem() })
    }

    /// Why the mounts step is not done (the first condition that fails), or nil when it is.
    func mountsProblem() throws(RunnerError) -> String? {
        for directory in nosuidDirectories { try MountUnits.check(directory) }
        for (path, text) in mountFiles where !HostFiles.matches(path, bytes: Array(text.utf8), mode: 0o644) {
            return "\(path) is missing or differs from what the installer writes"
        }
        for directory in nosuidDirectories {
            let (link, target) = mountWantsLink(directory)
            let found = SymbolicLink.target(link)
            if found != target { return "\(link) points at \(found ?? "nothing"), not \(target)" }
        }
        guard systemdRunning else { return nil }
        let mounts = MountUnits.parseMountInfo(
            String(decoding: (try? FilePaths.read("/proc/self/mountinfo")) ?? [], as: UTF8.self))
        for directory in nosuidDirectories {
            let options = MountUnits.options(of: directory, in: mounts) ?? []
            let missing = MountUnits.requiredOptions.filter { !options.contains($0) }
            if !missing.isEmpty {
                return "\(directory) is on a mount without \(missing.joined(separator: ",")) (its options: "
                    + "\(options.sorted().joined(separator: ",")))"
            }
        }
        return nil
    }

    // MARK: images

    var imagesStep: InstallStep {
        let images = settings.images
        return InstallStep(
            "images",
            images.isEmpty ? "no guest images configured" : "import " + images.map(\.name).joined(separator: ", "),
            isDone: { images.allSatisfy { (try? imageStore.resolve($0.name).digest) == $0.sha256 } },
            apply: { () throws(RunnerError) in
                for image in images where (try? imageStore.resolve(image.name).digest) != image.sha256 {
                    let cached = layout.cacheDirectory + "/image-\(image.name)-\(image.sha256.prefix(16)).tar.zst"
                    try await download(image.url, to: cached, sha256: image.sha256)
                    try await imageStore.importArchive(cached, name: image.name)
                }
            })
    }

    // MARK: sudoers

    var sudoersStep: InstallStep {
        InstallStep(
            "sudoers", "\(settings.user) may run \(Installer.hostGuestHelper) as root, nothing else",
            isDone: { HostFiles.matches(layout.sudoersRule, bytes: Array(sudoersContent.utf8), mode: 0o440) },
            apply: { () throws(RunnerError) in
                let directory = FilePaths.parent(of: layout.sudoersRule)
                try FilePaths.createDirectory(directory)
                HostFiles.sweepLeftovers(in: directory)
                // sudo ignores names with a dot, so the candidate is inert until renamed.
                let candidate = FilePaths.temporarySibling(of: layout.sudoersRule)
                defer { try? FilePaths.remove(candidate) }
                try AtomicFile.write(sudoersContent, to: candidate, mode: 0o440)
                let check = Visudo().check(candidate)
                try await commandRunner.run(check).checked(check, fix: "report this as a bug: the rule is generated")
                guard rename(candidate, layout.sudoersRule) == 0 else {
                    throw RunnerError.posix("could not move into place", layout.sudoersRule, fix: nil)
                }
            })
    }

    // MARK: systemd

    var systemdStep: InstallStep {
        InstallStep(
            "systemd", systemdRunning ? "enable runner.service and reload systemd" : "enable runner.service",
            isDone: { () throws(RunnerError) in
                guard SymbolicLink.target(wantsLink) == Installer.hostUnitPath else { return false }
                guard systemdRunning else { return true }
                let command = Systemctl().needsReload("runner.service")
                return try await commandRunner.run(command).standardOutput.trimmedWhitespace == "no"
            },
            apply: { () throws(RunnerError) in
                HostFiles.sweepLeftovers(in: FilePaths.parent(of: wantsLink))
                try HostFiles.symlink(wantsLink, to: Installer.hostUnitPath)
                if systemdRunning {
                    let reload = Systemctl().daemonReload()
                    try await commandRunner.run(reload).checked(reload)
                }
            })
    }

    // MARK: marker

    var markerContent: String { "release=\(currentVersion ?? "")\nrunner=\(settings.runnerVersion)\n" }

    var markerStep: InstallStep {
        InstallStep(
            "marker", "write \(layout.installedMarker)",
            isDone: { HostFiles.matches(layout.installedMarker, bytes: Array(markerContent.utf8), mode: 0o644) },
            apply: { () throws(RunnerError) in
                try FilePaths.createDirectory(layout.stateDirectory)
                HostFiles.sweepLeftovers(in: layout.stateDirectory)
                try AtomicFile.write(markerContent, to: layout.installedMarker, mode: 0o644)
            })
    }

    /// After the marker: start runner.service without waiting (it is conditional on the marker).
    func startService() async throws(RunnerError) {
        guard systemdRunning else { return }
        let command = Systemctl().startNoBlock("runner.service")
        try await commandRunner.run(command).checked(command)
    }
}
