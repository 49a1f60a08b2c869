import FoundationEssentials
import Logging
import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A temporary host root with a config.env, the host's user database (for a real `useradd
/// --prefix`), and a fake GitHub serving a test-made runner tarball and guest image.
struct InstallHarness {
    let directory: TemporaryDirectory
    let root: String
    let layout: HostLayout
    let artefacts: Artefacts

    /// The bundle, runner tarball and image, made once per test and served from 127.0.0.1.
    struct Artefacts {
        let directory: String
        let github: FakeGitHub
        let bundle: String
        let tarballSHA256: String
        let imageSHA256: String
    }

    static func makeArtefacts(in directory: String) async throws -> Artefacts {
        let downloads = directory + "/downloads"
        try FilePaths.createDirectory(downloads)
        let options = ReproducibleArchive.Options()
        // The runner package: what actions/runner's tarball holds at its top, in small.
        let tarball = downloads + "/actions-runner-linux-x64-2.336.0.tar.gz"
        try ReproducibleArchive.write(
            [
                ArchiveMember(
                    path: "config.sh", content: .bytes(Array("#!/bin/bash\necho config\n".utf8)), permissions: 0o755),
                ArchiveMember(
                    path: "run.sh", content: .bytes(Array("#!/bin/bash\necho run\n".utf8)), permissions: 0o755),
                ArchiveMember(
                    path: "bin/Runner.Listener", content: .bytes(Array(repeating: 7, count: 4096)), permissions: 0o755),
                ArchiveMember(path: "externals/node20/bin/node", content: .bytes([1, 2, 3]), permissions: 0o755),
            ], to: tarball, options: options)
        // A guest image: a tiny tree.
        let image = downloads + "/rootfs-tiny.tar.zst"
        try ReproducibleArchive.write(
            [
                ArchiveMember(path: "etc/os-release", content: .bytes(Array("ID=tiny\n".utf8)), permissions: 0o644),
                ArchiveMember(path: "usr/bin/true", content: .bytes([0x7f]), permissions: 0o755),
            ], to: image, options: ReproducibleArchive.Options(compression: .zstd(level: 3)))
        // The release bundle, written by the real builder (runner-build bundle) around a stand-in
        // agent and runner-hook (beside it, where the builder takes it from by default).
        let agent = directory + "/runner-agent"
        try AtomicFile.write("#!/bin/sh\nexit 0\n", to: agent, mode: 0o755)
        try AtomicFile.write("#!/bin/sh\nexit 0\n", to: directory + "/runner-hook", mode: 0o755)
        let build = Command(
            runnerBuildBinary,
            [
                "bundle", "--version", "v1.2.0", "--agent", agent, "--out", directory, "--source",
                Repo.root,
            ])
        try await SystemCommandRunner().run(build).checked(build)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        let bundle = directory + "/" + (try #require(names.first { $0.hasPrefix("runner-bundle-v1.2.0-linux-") }))
        let github = try await FakeGitHub(directory: directory, downloads: downloads)
        return Artefacts(
            directory: directory, github: github, bundle: bundle, tarballSHA256: try SHA256Digest.hex(ofFile: tarball),
            imageSHA256: try SHA256Digest.hex(ofFile: image))
    }

    init(artefacts: Artefacts) throws {
        self.artefacts = artefacts
        directory = try TemporaryDirectory("install")
        root = directory.path + "/root"
        layout = HostLayout(root: root)
        try FilePaths.createDirectory(root + "/etc")
        for name in ["passwd", "group", "shadow", "gshadow", "login.defs"] {
            let source = "/etc/" + name
            if FilePaths.exists(source) {
                try AtomicFile.write(
                    try FilePaths.read(source), to: root + "/etc/" + name, mode: name.contains("sha") ? 0o640 : 0o644)
            }
        }
        let base = artefacts.github.baseURL + "/downloads"
        try AtomicFile.write(
            """
            RUNNER_GITHUB_URL=https://github.com/acme
            RUNNER_USER=ci-runner
            RUNNER_VERSION=2.336.0
            RUNNER_TARBALL_URL=\(base)/actions-runner-linux-x64-2.336.0.tar.gz
            RUNNER_TARBALL_SHA256=\(artefacts.tarballSHA256)
            RUNNER_IMAGES="tiny=\(base)/rootfs-tiny.tar.zst@sha256:\(artefacts.imageSHA256)"
            RUNNER_DEFAULT_IMAGE=tiny

            """, to: layout.configFile, mode: 0o600)
    }

    func installer(bundle: Bool = true) throws -> Installer {
        let config = try ConfigEnv.load(nil, layout: layout, for: .install)
        return Installer(
            layout: layout, settings: try InstallSettings(config), bundle: bundle ? artefacts.bundle : nil,
            commandRunner: SystemCommandRunner(), logger: Logger(label: "test"))
    }

    /// Runs the installer in this process; returns each step's outcome and the printed lines.
    func install(dryRun: Bool = false, bundle: Bool = true) async throws -> ([String: StepOutcome], [String]) {
        let lines = LogCapture()
        let runner = StepRunner(logger: Logger(label: "test")) { lines.append($0) }
        let outcomes = try await runner.run(try installer(bundle: bundle).steps, dryRun: dryRun)
        return (outcomes, lines.all)
    }

    /// Runs the real `runner-agent install` binary, optionally killed after a step or a delay.
    func installBinary(killAfterStep: String? = nil, killAfter delay: Duration? = nil) async throws
        -> RunnerCore.ExitStatus
    {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin:/usr/sbin:/sbin"]
        if let killAfterStep { environment["RUNNER_INSTALL_KILL_AFTER"] = killAfterStep }
        let child = try TestProcess.start(
            Command(InstallHarness.agentBinary, ["install", "--root", root, "--bundle", artefacts.bundle]),
            environment: environment)
        let start = ContinuousClock.now
        var output: [UInt8] = []
        while true {
            output += child.readAvailableOutput()
            if let status = child.poll() { return status }
            if let delay, ContinuousClock.now - start >= delay {
                // What systemd's cgroup kill does: the installer and every process it started.
                await killTree(child.pid)
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// SIGKILLs `pid` and all its descendants (found through /proc/<pid>/stat's ppid field).
    func killTree(_ pid: pid_t) async {
        // Stopped first, the installer cannot start another child while we look.
        kill(pid, SIGSTOP)
        var all: [pid_t: pid_t] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let p = pid_t(name), let bytes = try? FilePaths.read("/proc/\(name)/stat") else { continue }
            let text = String(decoding: bytes, as: UTF8.self)
            guard let close = text.lastIndex(of: ")") else { continue }
            let fields = text[text.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { all[p] = parent }
        }
        var victims: [pid_t] = [pid]
        var index = 0
        while index < victims.count {
            let parent = victims[index]
            victims += all.filter { $0.value == parent }.map(\.key)
            index += 1
        }
        for victim in victims.reversed() { kill(victim, SIGSTOP) }
        for victim in victims { kill(victim, SIGKILL) }
        // Like systemd, which restarts a unit only once its cgroup is empty: wait (bounded)
        // until every victim has exited, so the re-run never races a dying useradd's locks.
        for _ in 0..<500 {
            let dying = victims.contains { victim in
                guard let bytes = try? FilePaths.read("/proc/\(victim)/stat") else { return false }
                let text = String(decoding: bytes, as: UTF8.self)
                guard let close = text.lastIndex(of: ")") else { return false }
                let state = text[text.index(after: close)...].split(separator: " ").first
                return state != "Z" && state != "X"
            }
            if !dying { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    static var runnerBuildBinary: String { BuiltProducts.directory + "/runner-build" }

    static var agentBinary: String { BuiltProducts.directory + "/runner-agent" }

    /// A digest of the tree under the root: every path, type, mode, owner, content and link
    /// target (not times).
    func treeDigest() throws -> String {
        SHA256Digest.hex(of: Array(try treeLines().joined(separator: "\n").utf8))
    }

    /// One line per path under the root (what ``treeDigest()`` hashes).
    func treeLines() throws -> [String] {
        var lines: [String] = []
        func walk(_ relative: String) throws {
            let path = root + relative
            // shadow-utils' own backups (passwd-, group-, …) hold whatever came before its last write.
            if relative.hasPrefix("/etc/") && relative.hasSuffix("-") { return }
            // Runtime state (the admin lock every install takes), gone at reboot.
            if relative == "/run" { return }
            var st = stat()
            guard lstat(path, &st) == 0 else { return }
            let type = st.st_mode & S_IFMT
            var line = "\(relative.isEmpty ? "/" : relative) \(String(st.st_mode, radix: 8)) \(st.st_uid):\(st.st_gid)"
            if type == S_IFREG {
                line += " " + (try SHA256Digest.hex(ofFile: path))
            } else if type == S_IFLNK {
                line += " -> " + (SymbolicLink.target(path) ?? "?")
            }
            lines.append(line)
            if type == S_IFDIR {
                for name in try FileManager.default.contentsOfDirectory(atPath: path).sorted() {
                    try walk(relative + "/" + name)
                }
            }
        }
        try walk("")
        return lines
    }

    func finish() { directory.remove() }
}
