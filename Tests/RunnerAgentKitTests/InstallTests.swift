import FoundationEssentials
import Logging
import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Synchronization
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
        // The release bundle, written by the real builder (runner-build bundle) around a stand-in agent.
        let agent = directory + "/runner-agent"
        try AtomicFile.write("#!/bin/sh\nexit 0\n", to: agent, mode: 0o755)
        let build = Command(
            runnerBuildBinary,
            [
                "bundle", "--version", "v1.2.0", "--agent", agent, "--out", directory, "--source",
                Fixtures.repositoryRoot,
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
        let values = try ConfigEnv.load(nil, layout: layout, for: .install)
        return Installer(
            layout: layout, settings: try InstallSettings(values: values), bundle: bundle ? artefacts.bundle : nil,
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

    static var runnerBuildBinary: String { Fixtures.repositoryRoot + "/.build/debug/runner-build" }

    static var agentBinary: String { Fixtures.repositoryRoot + "/.build/debug/runner-agent" }

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

@Suite(
    .serialized, .requiresRoot, .requires("useradd"), .requires("visudo"), .requires("python3"), .requires("curl"),
    .enabled(if: access(InstallHarness.runnerBuildBinary, X_OK) == 0, "needs .build/debug/runner-build (swift build)")
)
struct InstallTests {
    @Test func cleanInstallThenASecondRunChangesNothing() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            let (first, lines) = try await h.install()
            let names = try h.installer().steps.map(\.name)
            #expect(
                names == [
                    "release", "host-files", "runner-user", "schedulers", "runner-package", "work-directory", "mounts",
                    "images", "sudoers", "systemd", "marker",
                ])
            #expect(names.allSatisfy { first[$0] == .done }, "\(lines)")
            let layout = h.layout
            #expect(SymbolicLink.target(layout.currentRelease) == "releases/v1.2.0")
            #expect(SymbolicLink.target(layout.guestHelper) == "/usr/local/lib/runner/current/bin/runner-agent")
            // `sudo runner-agent doctor` (the README's command): the agent of the active release on PATH.
            let agentOnPath = try #require(SymbolicLink.target(layout.path("/usr/local/bin/runner-agent")))
            #expect(agentOnPath == "/usr/local/lib/runner/current/bin/runner-agent")
            let doctor = try await SystemCommandRunner().run(Command(layout.path(agentOnPath), ["doctor"]))
            #expect(doctor.status == .exited(0), "the stand-in agent through the link: \(doctor)")
            #expect(FilePaths.exists(layout.systemdUnitDirectory + "/runner.service"))
            #expect(
                SymbolicLink.target(layout.systemdUnitDirectory + "/multi-user.target.wants/runner.service")
                    == "/etc/systemd/system/runner.service")
            let user = try #require(PasswdFile.lookup("ci-runner", layout: layout))
            var st = stat()
            #expect(stat(layout.runnerDirectory + "/run.sh", &st) == 0 && st.st_uid == user.uid)
            #expect(stat(layout.workDirectory, &st) == 0 && st.st_uid == user.uid)
            let sudoers = String(decoding: try FilePaths.read(layout.sudoersRule), as: UTF8.self)
            #expect(sudoers.contains("ci-runner ALL=(root) NOPASSWD: /usr/local/bin/ci-nspawn-run\n"))
            // The work and externals directories get nosuid,nodev bind mounts, enabled and
            // required by runner.service.
            for (unit, path) in [
                ("var-lib-runner-work.mount", "/var/lib/runner/work"),
                ("opt-actions\\x2drunner-externals.mount", "/opt/actions-runner/externals"),
            ] {
                let text = String(decoding: try FilePaths.read(layout.systemdUnitDirectory + "/" + unit), as: UTF8.self)
                #expect(text.contains("What=\(path)\nWhere=\(path)\nType=none\nOptions=bind,nosuid,nodev\n"))
                #expect(
                    SymbolicLink.target(layout.systemdUnitDirectory + "/multi-user.target.wants/" + unit)
                        == "/etc/systemd/system/" + unit)
            }
            // The runner user may not leave cron or at jobs that run between jobs.
            for file in ["/etc/cron.deny", "/etc/at.deny"] {
                #expect(try FilePaths.read(layout.path(file)) == Array("ci-runner\n".utf8))
            }
            let dropIn = try FilePaths.read(layout.systemdUnitDirectory + "/runner.service.d/10-mounts.conf")
            #expect(
                String(decoding: dropIn, as: UTF8.self).contains(
                    "RequiresMountsFor=/var/lib/runner/work /opt/actions-runner/externals\n"))
            #expect(try ImageStore(layout: layout).resolve("tiny").digest == artefacts.imageSHA256)
            let marker = String(decoding: try FilePaths.read(layout.installedMarker), as: UTF8.self)
            #expect(marker == "release=v1.2.0\nrunner=2.336.0\n")
            let digest = try h.treeDigest()
            let downloads = try await artefacts.github.stats()["download"]

            let (second, secondLines) = try await h.install()
            #expect(names.allSatisfy { second[$0] == .alreadyDone }, "\(secondLines)")
            #expect(secondLines.allSatisfy { $0.contains("already done") })
            #expect(try h.treeDigest() == digest)
            #expect(try await artefacts.github.stats()["download"] == downloads)
        }
    }

    /// bootstrap.sh's git mode: `install --source CHECKOUT` makes the same kind of release.
    @Test func installFromASourceCheckout() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            let checkout = dir.appending("checkout")
            for file in BundleLayout.files {
                let bytes: [UInt8]
                switch file.source {
                case .agentBinary: bytes = Array("#!/bin/sh\nexit 0\n".utf8)
                case .repository(let relative): bytes = try FilePaths.read(Fixtures.repositoryRoot + "/" + relative)
                }
                let path = checkout + "/" + (file.source == .agentBinary ? BundleLayout.agentPath : sourcePath(file))
                try AtomicFile.write(bytes, to: path, mode: file.mode)
            }
            var installer = try h.installer(bundle: false)
            installer.unpacker = CheckoutRelease(checkout: checkout, version: try BundleVersion("v1.3"))
            let lines = LogCapture()
            let runner = StepRunner(logger: Logger(label: "t")) { lines.append($0) }
            let first = try await runner.run(installer.steps, dryRun: false)
            #expect(first.values.allSatisfy { $0 == .done }, "\(lines.all)")
            #expect(SymbolicLink.target(h.layout.currentRelease) == "releases/v1.3")
            let manifest = try BundleVerifier.checkTree(h.layout.releaseDirectory("v1.3"), bundle: "test")
            #expect(manifest.files.count == BundleLayout.files.count)
            let second = try await runner.run(installer.steps, dryRun: false)
            #expect(second.values.allSatisfy { $0 == .alreadyDone })
        }
    }

    func sourcePath(_ file: BundleLayout.File) -> String {
        if case .repository(let relative) = file.source { return relative }
        return BundleLayout.agentPath
    }

    @Test func dryRunPrintsThePlanAndWritesNothing() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            let before = try h.treeDigest()
            let (outcomes, lines) = try await h.install(dryRun: true)
            #expect(outcomes.values.allSatisfy { $0 == .wouldRun })
            #expect(lines.count == 11)
            #expect(lines.first?.hasPrefix("[1/11] release: would run: unpack and verify") == true)
            #expect(try h.treeDigest() == before)
        }
    }

    @Test func aTamperedBundleIsRefusedAndNothingIsSwitched() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            // Same manifest, different agent bytes.
            var bytes = try FilePaths.read(artefacts.bundle)
            let manifest = try ArchiveReader.readMember("MANIFEST.json", from: artefacts.bundle)
            let tampered = dir.appending("tampered.tar.gz")
            try ReproducibleArchive.write(
                [
                    ArchiveMember(path: "MANIFEST.json", content: .bytes(manifest), permissions: 0o644),
                    ArchiveMember(path: "bin/runner-agent", content: .bytes(Array("evil".utf8)), permissions: 0o755),
                ], to: tampered, options: ReproducibleArchive.Options(leadingPaths: ["MANIFEST.json"]))
            bytes = []
            var installer = try h.installer()
            installer.bundle = tampered
            let runner = StepRunner(logger: Logger(label: "t")) { _ in }
            let error = await #expect(throws: RunnerError.self) { try await runner.run(installer.steps, dryRun: false) }
            #expect(error?.code == .integrity || error?.code == .notFound || error?.code == .io)
            #expect(!FilePaths.exists(h.layout.currentRelease))
            #expect(!FilePaths.exists(h.layout.installedMarker))
            #expect(bytes.isEmpty)
        }
    }

    /// SIGKILL after every step, and at 20 random moments; a re-run always converges to the
    /// clean tree, and the marker exists only once everything else does.
    @Test func killedAnywhereTheInstallerConvergesOnTheNextRun() async throws {
        try #require(access(InstallHarness.agentBinary, X_OK) == 0, "build runner-agent first (swift build)")
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let clean = try InstallHarness(artefacts: artefacts)
            defer { clean.finish() }
            let start = ContinuousClock.now
            #expect(try await clean.installBinary() == .exited(0))
            let cleanDuration = ContinuousClock.now - start
            let cleanDigest = try clean.treeDigest()
            let cleanLines = Set(try clean.treeLines())
            let steps = try clean.installer().steps.map(\.name)

            var trials: [(String?, Duration?)] = steps.map { ($0, nil) }
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<20 {
                let fraction = Double.random(in: 0...1, using: &generator)
                trials.append((nil, cleanDuration * fraction))
            }
            for (step, delay) in trials {
                let h = try InstallHarness(artefacts: artefacts)
                defer { h.finish() }
                let status = try await h.installBinary(killAfterStep: step, killAfter: delay)
                if step != nil { #expect(status == .signaled(SIGKILL), "killed after \(step ?? "")") }
                if FilePaths.exists(h.layout.installedMarker) {
                    #expect(step == nil || step == "marker", "marker before the last step (after \(step ?? ""))")
                    #expect(try h.treeDigest() == cleanDigest, "marker exists but the host is not fully installed")
                }
                #expect(try await h.installBinary() == .exited(0), "re-run after \(step ?? "\(delay!)")")
                let lines = Set(try h.treeLines())
                let same = lines == cleanLines
                #expect(
                    same,
                    """
                    diverged after a kill \(step.map { "after \($0)" } ?? "at \(delay!)"): \
                    extra \(lines.subtracting(cleanLines).sorted()), missing \(cleanLines.subtracting(lines).sorted())
                    """)
            }
        }
    }
}

struct InstallUnitTests {
    @Test func hostCommandsArgv() {
        #expect(
            Useradd().systemUser("runner", home: "/home/runner", layout: HostLayout()).argv == [
                "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/home/runner", "--shell",
                "/bin/bash", "runner",
            ])
        #expect(
            Useradd().systemUser("runner", home: "/home/runner", layout: HostLayout(root: "/tmp/r")).argv.prefix(3) == [
                "useradd", "--prefix", "/tmp/r",
            ])
        #expect(
            Visudo().check("/etc/sudoers.d/x").argv == ["visudo", "--check", "--quiet", "--file", "/etc/sudoers.d/x"])
        #expect(Systemctl().daemonReload().argv == ["systemctl", "daemon-reload"])
        #expect(
            Systemctl().startNoBlock("runner.service").argv == ["systemctl", "start", "--no-block", "runner.service"])
        #expect(
            Chown().recursive(uid: 5, gid: 6, "/opt/x").argv == ["chown", "-R", "--no-dereference", "5:6", "/opt/x"])
    }

    @Test func settingsParseImagesAndDefaultTheTarballURL() throws {
        let sha = String(repeating: "a", count: 64)
        let settings = try InstallSettings(values: [
            "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": sha,
            "RUNNER_IMAGES":
                "debian-bookworm=https://x/r.tar.zst@sha256:\(sha)  ubuntu=https://y/u.tar.zst@sha256:\(sha)",
        ])
        #expect(settings.user == "runner")
        #expect(settings.images.map(\.name) == ["debian-bookworm", "ubuntu"])
        #expect(settings.images.first?.url == "https://x/r.tar.zst")
        #expect(
            settings.tarballURL.hasPrefix(
                "https://github.com/actions/runner/releases/download/v2.336.0/actions-runner-linux-"))
    }

    @Test(arguments: [
        ["RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64)],
        ["RUNNER_VERSION": "v2.336.0", "RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64)],
        ["RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": "abc"],
        [
            "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64),
            "RUNNER_IMAGES": "x=y",
        ],
        [
            "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64),
            "RUNNER_USER": "Root;",
        ],
        [
            "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64),
            "RUNNER_WORK_DIR": "work",
        ],
    ])
    func badSettings(values: [String: String]) {
        let error = #expect(throws: RunnerError.self) { try InstallSettings(values: values) }
        #expect(error?.code == .invalidConfig)
    }
}
