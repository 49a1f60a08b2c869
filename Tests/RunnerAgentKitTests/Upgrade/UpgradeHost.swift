import FoundationEssentials
import Logging
import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A host installed into a temporary root by the installer's own steps (release, host-files,
/// runner-package, marker), without root: the runner user is this process's user in the root's
/// `/etc/passwd`, and the runner tarballs the bundles pin wait in the download cache. Commands
/// go to a ``RecordingCommandRunner`` (systemctl answers `active` unless told otherwise).
struct UpgradeHost {
    /// The GitHub runner versions with a fake tarball in the cache.
    static let runnerVersions = ["2.336.0", "2.337.0"]

    let directory: TemporaryDirectory
    let layout: HostLayout
    let commands = RecordingCommandRunner()
    let lines = LogCapture()
    /// The releases runner.service does not come up on.
    let failing = FailingReleases()
    /// The sha256 of each fake runner tarball, by version.
    let tarballs: [String: String]

    /// A root with config.env (no RUNNER_VERSION: the bundles pin it, plus `config`), the user
    /// database and the cached runner tarballs.
    init(config: String = "") throws {
        directory = try TemporaryDirectory("upgrade")
        layout = HostLayout(root: directory.path + "/root")
        try AtomicFile.write("runner:x:\(getuid()):\(getgid())::/home/runner:/bin/sh\n", to: layout.path("/etc/passwd"))
        try AtomicFile.write("runner:x:\(getgid()):\n", to: layout.path("/etc/group"))
        try AtomicFile.write(
            "RUNNER_GITHUB_URL=https://github.com/acme\nRUNNER_DEFAULT_IMAGE=tiny\n" + config, to: layout.configFile,
            mode: 0o600)
        var tarballs: [String: String] = [:]
        for version in Self.runnerVersions {
            let path = layout.cacheDirectory + "/actions-runner-linux-\(InstallSettings.runnerArch)-\(version).tar.gz"
            try FilePaths.createDirectory(layout.cacheDirectory)
            try ReproducibleArchive.write(
                [
                    ArchiveMember(path: "config.sh", content: .bytes(Array("#!/bin/sh\n".utf8)), permissions: 0o755),
                    ArchiveMember(
                        path: "run.sh", content: .bytes(Array("#!/bin/sh\n# runner \(version)\n".utf8)),
                        permissions: 0o755),
                ], to: path, options: ReproducibleArchive.Options())
            tarballs[version] = try SHA256Digest.hex(ofFile: path)
        }
        self.tarballs = tarballs
        let layout = layout
        let failing = failing
        commands.answer(
            when: { command in
                command.arguments.first == "show"
                    && ReleaseSwitch(layout: layout).current.map { failing.contains($0) } == true
            }, with: Self.failed)
        commands.answer(when: { $0.arguments.first == "show" }, with: Self.active)
    }

    func finish() { directory.remove() }

    /// Writes a bundle of `version` as `runner-build bundle` lays it out: the repository's units
    /// and scripts (`container-hooks.sh` ending in `# release <version>`, so each release's host
    /// files differ), a stand-in agent, `MANIFEST.json` first, pinning GitHub runner `runner`.
    func bundle(_ version: String, runner: String? = "2.336.0") throws -> (path: String, sha256: String) {
        var files: [BundleManifest.File] = []
        var members: [ArchiveMember] = []
        for file in BundleLayout.files {
            var bytes: [UInt8]
            switch file.source {
            case .agentBinary: bytes = Array("#!/bin/sh\necho \(version)\n".utf8)
            case .hookBinary: bytes = Array("#!/bin/sh\nexec runner-agent hook\n".utf8)
            case .repository(let relative): bytes = try FilePaths.read(Repo.root + "/" + relative)
            }
            if file.path == "container-hooks.sh" { bytes += Array("# release \(version)\n".utf8) }
            files.append(
                BundleManifest.File(
                    path: file.path, size: Int64(bytes.count), mode: file.mode, sha256: SHA256Digest.hex(of: bytes)))
            members.append(ArchiveMember(path: file.path, content: .bytes(bytes), permissions: file.mode))
        }
        let manifest = BundleManifest(
            bundleVersion: try BundleVersion(version), arch: .host, sourceCommit: nil, files: files,
            runner: runner.map { RunnerPackagePin(version: $0, sha256: tarballs[$0]) })
        members.append(
            ArchiveMember(path: BundleManifest.fileName, content: .bytes(try manifest.encoded()), permissions: 0o644))
        let path = directory.appending("runner-bundle-\(version)-linux-\(BundleArch.host.rawValue).tar.gz")
        try ReproducibleArchive.write(
            members, to: path, options: .init(leadingPaths: [BundleManifest.fileName]), replaceExisting: true)
        return (path, try SHA256Digest.hex(ofFile: path))
    }

    /// config.env, validated as the commands load it.
    func config() throws -> RunnerConfig { try ConfigEnv.load(nil, layout: layout, for: .install) }

    /// Installs `bundle` with the installer's steps, pinned runner and all (commands not recorded).
    func install(_ version: String, runner: String? = "2.336.0") async throws {
        let bundle = try bundle(version, runner: runner).path
        let pinned = try RunnerPackagePin.forInstall(
            bundle: bundle, unpacker: ManifestReleaseUnpacker(), layout: layout)
        let installer = Installer(
            layout: layout, settings: try InstallSettings(try config(), pinned: pinned), bundle: bundle,
            commandRunner: RecordingCommandRunner(), logger: Logger(label: "test"))
        let steps = [installer.releaseStep, installer.hostFilesStep, installer.packageStep, installer.markerStep]
        try await StepRunner(logger: Logger(label: "test")) { _ in }.run(steps, dryRun: false)
    }

    /// An upgrader on this root with short time bounds, recording into ``commands``.
    func upgrader(commandRunner: (any CommandRunner)? = nil) throws -> Upgrader {
        var timing = Upgrader.Timing()
        timing.startTimeout = .seconds(5)
        timing.settle = .zero
        timing.poll = .milliseconds(10)
        let lines = lines
        return Upgrader(
            layout: layout, config: try config(), commandRunner: commandRunner ?? commands,
            logger: Logger(label: "test"),
            timing: timing
        ) { lines.append($0) }
    }

    static let active = CommandResult(
        status: .exited(0), standardOutput: "ActiveState=active\nSubState=running\nNRestarts=0\n")
    static let failed = CommandResult(
        status: .exited(0), standardOutput: "ActiveState=failed\nSubState=failed\nNRestarts=0\n")

    /// From now on `systemctl show runner.service` answers failed while `current` names one of
    /// `failing`, active otherwise.
    func serviceComesUp(except failing: Set<String>) { self.failing.set(failing) }

    /// The argv of every recorded command, the root stripped from paths.
    var argv: [[String]] {
        commands.commands.map { command in
            command.argv.map { $0.hasPrefix(layout.root + "/") ? String($0.dropFirst(layout.root.count)) : $0 }
        }
    }

    /// The target of a release link (`current`, `previous`), or nil.
    var current: String? { SymbolicLink.target(layout.currentRelease) }
    var previous: String? { SymbolicLink.target(layout.previousRelease) }

    /// The release the installed container-hooks.sh came from (its last line).
    var hostFilesRelease: String? {
        guard let bytes = try? FilePaths.read(layout.containerHooksScript) else { return nil }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").last.map {
            String($0.dropFirst("# release ".count))
        }
    }

    /// The install marker's text.
    var marker: String { String(decoding: (try? FilePaths.read(layout.installedMarker)) ?? [], as: UTF8.self) }

    /// One line per path under the root: type, mode, content digest or link target.
    /// Every path under the root with its mode (and content digest or link target), but the
    /// runtime directory `/run` (the admin lock, which every upgrade and rollback takes).
    func tree() throws -> [String] {
        var lines: [String] = []
        func walk(_ relative: String) throws {
            guard relative != "/run" else { return }
            let path = layout.root + relative
            var st = stat()
            guard lstat(path, &st) == 0 else { return }
            let type = st.st_mode & S_IFMT
            var line = "\(relative.isEmpty ? "/" : relative) \(String(st.st_mode, radix: 8))"
            if type == S_IFREG {
                line += " " + (try SHA256Digest.hex(ofFile: path))
            } else if type == S_IFLNK {
                line += " -> " + (SymbolicLink.target(path) ?? "?")
            }
            lines.append(line)
            if type == S_IFDIR {
                for name in FilePaths.entries(of: path) { try walk(relative + "/" + name) }
            }
        }
        try walk("")
        return lines
    }
}

/// The releases an ``UpgradeHost``'s runner.service fails on.
final class FailingReleases: Sendable {
    private let releases = Mutex<Set<String>>([])
    func set(_ releases: Set<String>) { self.releases.withLock { $0 = releases } }
    func contains(_ release: String) -> Bool { releases.withLock { $0.contains(release) } }
}

/// Records like ``RecordingCommandRunner`` and, for `curl --output FILE --url URL`, copies the
/// file `files[URL]` to FILE (a download without a network).
final class DownloadingCommandRunner: CommandRunner {
    let recording: RecordingCommandRunner
    let files: [String: String]

    init(recording: RecordingCommandRunner, files: [String: String]) {
        self.recording = recording
        self.files = files
    }

    func start(_ command: Command, options: StartOptions) throws(RunnerError) -> any ProcessHandle {
        try recording.start(command, options: options)
    }

    func run(_ command: Command, input: [UInt8]?, output: OutputMode) async throws(RunnerError) -> CommandResult {
        let result = try await recording.run(command, input: input, output: output)
        guard command.executable == "curl", let o = command.arguments.firstIndex(of: "--output"),
            let u = command.arguments.firstIndex(of: "--url"), o + 1 < command.arguments.count,
            u + 1 < command.arguments.count
        else { return result }
        guard let source = files[command.arguments[u + 1]] else {
            return CommandResult(status: .exited(22), standardError: "curl: (22) 404")
        }
        try AtomicFile.write(try FilePaths.read(source), to: command.arguments[o + 1])
        return result
    }
}
