import FoundationEssentials
import RunnerAgentKit
import RunnerCore
import RunnerImages
import RunnerSystem
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(
    .serialized, .requiresRoot, .requires("mmdebstrap"), .requires("systemd-nspawn"), .requires("nsenter"),
    .enabled(if: RootfsBakes.available, "needs the repository checkout and the runner-build binary"))
struct ImageIntegrationTests {
    @Test func bakeImportBootRunAndShutDown() async throws {
        let (archive, manifestPath) = try await RootfsBakes.shared()
        let manifest = try RootfsManifest.load(manifestPath)
        #expect(manifest.name == "debian-bookworm")
        #expect(manifest.archiveSHA256 == (try SHA256Digest.hex(ofFile: archive)))
        let installed = Set(manifest.packages.map(\.name))
        for package in ["systemd", "dbus", "git", "curl", "ca-certificates", "zstd", "unzip", "procps", "libstdc++6"] {
            #expect(installed.contains(package), "manifest lists \(package)")
        }

        // A second run with the same recipe reuses the output and says so.
        let again = try await RootfsBakes.bake(
            recipe: try #require(RootfsBakes.repositoryRoot) + "/images/debian-bookworm",
            out: RootfsBakes.cacheDirectory)
        #expect(again.status.isSuccess)
        #expect(again.standardOutput.contains("reusing"))

        try await withTemporaryDirectory("image-boot") { dir in
            let store = ImageStore(layout: dir.layout)
            let image = try await store.importArchive(archive, name: "debian-bookworm", manifest: manifestPath)
            #expect(image.digest == manifest.archiveSHA256)
            #expect(try store.list().map(\.name) == ["debian-bookworm"])
            let rootfs = try store.rootfsPath(for: "debian-bookworm")

            // Guest-ready: no host identity in the tree, an empty machine-id, /usr merged.
            #expect(!FilePaths.exists(rootfs + "/etc/hostname"))
            #expect(!FilePaths.exists(rootfs + "/etc/resolv.conf"))
            #expect(try FilePaths.read(rootfs + "/etc/machine-id").isEmpty)
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: rootfs + "/bin")) == "usr/bin")
            // Full fidelity through bake and import: the root's mode, ownership, device nodes.
            var info = stat()
            #expect(stat(rootfs, &info) == 0 && info.st_mode & 0o7777 == 0o755 && info.st_uid == 0)
            #expect(lstat(rootfs + "/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
            #expect(lstat(rootfs + "/usr/bin/su", &info) == 0 && info.st_mode & 0o4000 != 0, "setuid kept")

            try await boot(rootfs: rootfs, scratch: dir.path)
            let mounts = String(decoding: try FilePaths.read("/proc/self/mountinfo"), as: UTF8.self)
            #expect(!mounts.contains(dir.path), "nothing of the guest is left mounted")

            // Remove: the name stops resolving and the tree is gone.
            try store.remove("debian-bookworm")
            #expect(throws: RunnerError.self) { try store.resolve("debian-bookworm") }
            #expect(!FilePaths.exists(dir.layout.imageDirectory("debian-bookworm")))
        }
    }

    /// Boots `rootfs`, checks the guest, powers it off and checks nothing is left running.
    func boot(rootfs: String, scratch: String) async throws {
        let notify = try NotifySocket(path: scratch + "/notify.sock")
        var binds: [String] = []
        // The runner's bundled node is bound at /__e: a node linked like it must start there.
        let node =
            TestHost.which("node").flatMap { try? FileManager.default.destinationOfSymbolicLink(atPath: $0) }
            .map { $0.hasPrefix("/") ? $0 : "/usr/bin/" + $0 } ?? TestHost.which("node")
        if let node { binds.append("\(node):/__e/node20/bin/node") }
        let bootCommand = GuestCommands.boot(
            rootfs: rootfs, machine: "rootfs-test-\(getpid())", notifySocket: notify.path, bindReadOnly: binds)
        let runner = SystemCommandRunner()
        let guest = Task { try await runner.run(bootCommand) }
        let messages = await notify.waitForReady(timeout: 60)
        guard messages["READY"] == "1", let leader = messages["X_NSPAWN_LEADER_PID"].flatMap({ Int32($0) }) else {
            guest.cancel()
            let result = try? await guest.value
            Issue.record("guest did not become ready: \(messages) \(result?.standardError ?? "")")
            return
        }

        let state = try await runner.run(
            GuestCommands.enter(leader: leader, ["systemctl", "is-system-running", "--wait"]))
        let stateText = state.standardOutput.split(separator: "\n").first.map(String.init) ?? ""
        if stateText != "running" {
            let failed = try? await runner.run(
                GuestCommands.enter(leader: leader, ["systemctl", "--failed", "--no-legend", "--plain"]))
            Issue.record("guest is \(stateText), failed units: \(failed?.standardOutput ?? "?")")
        }
        let git = try await runner.output(GuestCommands.step(leader: leader, ["git", "--version"]))
        #expect(git.hasPrefix("git version"))
        let curl = try await runner.output(GuestCommands.step(leader: leader, ["curl", "--version"]))
        #expect(curl.hasPrefix("curl "))
        let shell = try await runner.run(
            GuestCommands.step(leader: leader, ["/bin/bash", "-c", "echo \"$((6*7)) $(id -u)\"; exit 3"]))
        #expect(shell.status == .exited(3))
        #expect(shell.standardOutput == "42 0\n")
        if !binds.isEmpty {
            let version = try await runner.output(
                GuestCommands.step(leader: leader, ["/__e/node20/bin/node", "--version"]))
            #expect(version.hasPrefix("v"), "the bundled node starts in the guest")
        }

        _ = try await runner.run(GuestCommands.enter(leader: leader, ["systemctl", "poweroff"]))
        let exited = try await guest.value
        #expect(exited.status == .exited(0), "nspawn exits cleanly after poweroff: \(exited.standardError)")
        #expect(kill(leader, 0) != 0, "the guest's init is gone")
    }

    @Test func twoBakesGiveTheSameArchive() async throws {
        let (archive, manifestPath) = try await RootfsBakes.shared()
        let root = try #require(RootfsBakes.repositoryRoot)
        try await withTemporaryDirectory("rootfs-repro") { dir in
            let result = try await RootfsBakes.bake(
                recipe: root + "/images/debian-bookworm", out: dir.path, force: true)
            try #require(result.status.isSuccess, "bake failed:\n\(result.standardError)")
            let fresh = try RootfsManifest.load(
                dir.appending("rootfs-debian-bookworm-\(RootfsBakes.version).manifest.json"))
            let cached = try RootfsManifest.load(manifestPath)
            var reference = (archive: archive, manifest: cached)
            if fresh.packages != cached.packages {
                print("the mirror moved since the cached bake (package versions differ): baking the reference again")
                // The live mirror moved since the cached bake: compare two fresh bakes instead.
                let second = try await RootfsBakes.bake(
                    recipe: root + "/images/debian-bookworm", out: RootfsBakes.cacheDirectory, force: true)
                try #require(second.status.isSuccess, "bake failed:\n\(second.standardError)")
                reference = (archive, try RootfsManifest.load(manifestPath))
            }
            if fresh.archiveSHA256 != reference.manifest.archiveSHA256 {
                let diff = try await SystemCommandRunner().run(
                    Command(
                        "diffoscope",
                        ["--text", "-", "--max-report-size", "200000", reference.archive, dir.appending(fresh.archive)])
                )
                let report = String(diff.standardOutput.prefix(20000))
                Issue.record(
                    "two bakes differ: \(reference.manifest.archiveSHA256) vs \(fresh.archiveSHA256)\n\(report)")
            }
            #expect(fresh.recipeDigest == reference.manifest.recipeDigest)
        }
    }

    @Test func missingPackageShowsAptsErrorLines() async throws {
        try await withTemporaryDirectory("rootfs-badpkg") { dir in
            let recipe = dir.appending("bad-package")
            try AtomicFile.write(
                """
                suite = bookworm
                architecture = amd64
                variant = minbase
                mirror = http://deb.debian.org/debian
                packages = bash no-such-package-runner-test
                """, to: recipe + "/recipe.conf")
            let result = try await RootfsBakes.bake(recipe: recipe, out: dir.appending("out"))
            #expect(!result.status.isSuccess)
            #expect(result.standardError.contains("E: Unable to locate package no-such-package-runner-test"))
            #expect(result.standardError.contains("recipe.conf"))
            let left = (try? FileManager.default.contentsOfDirectory(atPath: dir.appending("out"))) ?? []
            #expect(left.isEmpty, "nothing half-written: \(left)")
        }
    }

    @Test func unwritableOutputDirectoryIsRefused() async throws {
        let root = try #require(RootfsBakes.repositoryRoot)
        try await withTemporaryDirectory("rootfs-ro") { dir in
            let out = dir.appending("ro")
            try FilePaths.createDirectory(out)
            let runner = SystemCommandRunner()
            try await runner.output(Command("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", out]))
            defer { _ = umount2(out, Int32(MNT_DETACH)) }
            let result = try await RootfsBakes.bake(recipe: root + "/images/debian-bookworm", out: out)
            #expect(!result.status.isSuccess)
            #expect(result.standardError.contains("\(out): the output directory is not writable"))
        }
    }

    @Test(.requires("setpriv")) func nonRootIsRefused() async throws {
        let root = try #require(RootfsBakes.repositoryRoot)
        let bake = try RootfsBakes.command(
            ["rootfs", root + "/images/debian-bookworm", "--version", "nonroot", "--out", "/tmp/runner-nonroot-out"])
        let command = Command(
            "setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--"] + bake.argv,
            environment: bake.environment)
        let result = try await SystemCommandRunner().run(command)
        #expect(!result.status.isSuccess)
        #expect(result.standardError.contains("needs root"), "\(result.standardError)")
    }
}
