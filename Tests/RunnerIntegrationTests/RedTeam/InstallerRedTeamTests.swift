import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

#if canImport(Glibc)
    import Glibc
#endif

/// Issue #10 route 8: on a reinstall or upgrade the installer read `.credentials`, `.runner`, …
/// out of the runner-owned `/opt/actions-runner` following symlinks, into files the runner user
/// then owned; and handed over directories by path under directories the runner user can write.
@Suite(
    .serialized, .requiresRoot, .requires("useradd"), .requires("visudo"), .requires("python3"), .requires("curl"),
    .enabled(
        if: access(InstallHarness.runnerBuildBinary, X_OK) == 0,
        "needs the built runner-build (swift build --build-tests)")
)
struct InstallerRedTeamTests {
    /// The runner user plants a symlink, a hard link and a foreign file among the files kept
    /// across an upgrade; a file of its own is kept. The canaries are the test's root-only files.
    @Test func theUpgradeKeepsOnlyTheRunnersOwnRegularFiles() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            let (first, lines) = try await h.install()
            #expect(first.values.allSatisfy { $0 == .done }, "\(lines)")
            let user = try #require(PasswdFile.lookup("ci-runner", layout: h.layout))
            let runner = h.layout.runnerDirectory

            let secret = dir.appending("canary-secret")
            try AtomicFile.write("CANARY-SECRET-ROUTE8\n", to: secret, mode: 0o600)
            let linked = dir.appending("canary-linked")
            try AtomicFile.write("CANARY-HARDLINK-ROUTE8\n", to: linked, mode: 0o600)
            // What the runner user does in its own directory:
            symlink(secret, runner + "/.credentials")
            #expect(link(linked, runner + "/.runner") == 0)
            try AtomicFile.write("FOREIGN\n", to: runner + "/.credentials_rsaparams", mode: 0o600)
            chown(runner + "/.credentials_rsaparams", 4243, 4243)
            try AtomicFile.write("PATH-KEPT\n", to: runner + "/.path", mode: 0o600)
            chown(runner + "/.path", user.uid, user.gid)
            // An upgrade: the package step runs again.
            try FilePaths.remove(runner + "/.runner-package-sha256")

            let (second, secondLines) = try await h.install()
            #expect(second["runner-package"] == .done, "\(secondLines)")
            for name in [".credentials", ".runner", ".credentials_rsaparams"] {
                let text = String(decoding: (try? FilePaths.read(runner + "/" + name)) ?? [], as: UTF8.self)
                #expect(!text.contains("CANARY"), "\(name) copied a file the runner user may not read")
                #expect(!text.contains("FOREIGN"), "\(name) copied another user's file")
            }
            #expect(try FilePaths.read(runner + "/.path") == Array("PATH-KEPT\n".utf8), "its own file is kept")
            #expect(try FilePaths.read(secret) == Array("CANARY-SECRET-ROUTE8\n".utf8))
        }
    }

    /// RUNNER_WORK_DIR under the runner's home: the runner user swaps a directory on the way to
    /// the work directory for a symlink to a tree whose `work` is root-only; the installer must
    /// not hand that directory over.
    @Test func theWorkDirectoryIsNeverHandedOverThroughASymlink() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            let config = String(decoding: try FilePaths.read(h.layout.configFile), as: UTF8.self)
            try AtomicFile.write(
                config + "RUNNER_WORK_DIR=/home/ci-runner/w/work\n", to: h.layout.configFile, mode: 0o600)
            let (first, lines) = try await h.install()
            #expect(first.values.allSatisfy { $0 == .done }, "\(lines)")
            let canaryTree = dir.appending("canary-tree")
            let canary = canaryTree + "/work"
            try FilePaths.createDirectory(canary)
            chmod(canary, 0o700)
            // What the runner user does in its home:
            try FilePaths.remove(h.layout.path("/home/ci-runner/w"))
            symlink(canaryTree, h.layout.path("/home/ci-runner/w"))

            let printed = LogCapture()
            let runner = StepRunner(logger: Logger(label: "test")) { printed.append($0) }
            let installer = try h.installer()
            await #expect(throws: RunnerError.self) { _ = try await runner.run(installer.steps, dryRun: false) }
            #expect(
                printed.all.contains { $0.contains("work-directory: failed") && $0.contains("symlink") },
                "\(printed.all)")
            var st = stat()
            #expect(stat(canary, &st) == 0)
            #expect(st.st_uid == 0, "the canary directory was handed to the runner user")
            #expect(st.st_mode & 0o777 == 0o700)
        }
    }

    /// The reader itself: FIFOs (a read would hang), devices and directories are skipped.
    @Test func onlyRegularFilesAreRead() async throws {
        try await withTemporaryDirectory("owned") { dir in
            mkfifo(dir.appending("fifo"), 0o600)
            try FilePaths.createDirectory(dir.appending("sub"))
            try AtomicFile.write("ok", to: dir.appending("plain"))
            try AtomicFile.write(String(repeating: "x", count: 2000), to: dir.appending("big"))
            let fd = try #require(try RunnerOwnedFiles.openDirectory(dir.path))
            defer { close(fd) }
            #expect(RunnerOwnedFiles.readRegularFile(in: fd, "plain", owner: 0) == .success(Array("ok".utf8)))
            #expect(RunnerOwnedFiles.readRegularFile(in: fd, "absent", owner: 0) == .success(nil))
            for name in ["fifo", "sub", "../plain"] {
                guard case .failure = RunnerOwnedFiles.readRegularFile(in: fd, name, owner: 0) else {
                    Issue.record("\(name) was read")
                    continue
                }
            }
            guard case .failure = RunnerOwnedFiles.readRegularFile(in: fd, "big", owner: 0, limit: 1000) else {
                Issue.record("a file over the limit was read")
                return
            }
        }
    }
}
