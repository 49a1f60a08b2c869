import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerBuildKit
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// What a release serves an appliance, made from this checkout: the bundle of the built
/// (debug) agent, the guest images as archives the store imports, and a GitHub runner package
/// (the fake runner, whose listener is `fake_worker.py`).
enum ApplianceRelease {
    /// The test service's port (``HookHarness/addTestHTTPService(rootfs:port:)``): fixed, so its
    /// image archive is cached; outside the range other suites pick from (20000–39999).
    static let servicePort: UInt16 = 18_937
    /// Where the suite's directory is bound in the host guest (job queue, fake worker).
    static let mountPoint = "/e2e"

    /// `runner-bundle-<version>-linux-<arch>.tar.gz` of the built agent, in `directory`.
    static func bundle(in directory: String, version: String = "v1.2") throws -> (path: String, sha256: String) {
        let agent = try #require(BuiltProducts.runnerAgent, "runner-agent is built beside the tests")
        let output = try BundleBuilder().build(
            .init(
                version: try BundleVersion(version), agent: agent, sourceDirectory: Repo.root,
                outputDirectory: directory, sourceCommit: String(repeating: "e2", count: 20),
                modificationTime: 1_700_000_000, force: true))
        return (output.path, output.sha256)
    }

    /// The guest images `job` (the hook suites' test rootfs) and `svc` (the same with the test
    /// HTTP service), as `.tar.zst` archives written by the rootfs pipeline's writer; cached
    /// under /var/cache/runner-tests beside the tree they are made of.
    static func imageArchives() async throws -> (job: String, svc: String) {
        let tree = try await CachedTree.guest.tree()
        let directory = tree + "-archives-v2-port\(servicePort)"  // v2: the service binds 0.0.0.0 (job networks)
        let job = directory + "/job.tar.zst"
        let svc = directory + "/svc.tar.zst"
        if FilePaths.exists(job) && FilePaths.exists(svc) { return (job, svc) }
        let staging = FilePaths.temporarySibling(of: directory)
        try FilePaths.createDirectory(staging)
        let writer = LibArchiveRootfsWriter(zstdLevel: 1)
        try await writer.write(
            tree: tree, to: staging + "/job.tar.zst", sourceDateEpoch: 1_700_000_000, progress: .silent)
        // The service image: hard links of the tree, its changed files replaced (never written through).
        let svcTree = staging + "/svc-tree"
        try await run(Command("cp", ["-al", tree, svcTree]))
        try HookHarness.addTestHTTPService(rootfs: svcTree, port: servicePort)
        try await writer.write(
            tree: svcTree, to: staging + "/svc.tar.zst", sourceDateEpoch: 1_700_000_000, progress: .silent)
        try FilePaths.remove(svcTree)
        if rename(staging, directory) != 0 {
            try FilePaths.remove(staging)
            guard FilePaths.exists(job) else { throw RunnerError.posix("rename", directory, fix: nil) }
        }
        return (job, svc)
    }

    /// A GitHub runner package (`.tar.gz`, files at the top like actions/runner's): the fake
    /// `config.sh`/`run.sh` talking to `apiURL`, `externals/`, and a `.fake/listener` that runs
    /// `fake_worker.py listen` on the suite's job queue.
    static func runnerTarball(in directory: String, apiURL: String) async throws -> String {
        let staging = directory + "/runner-package"
        try FilePaths.createDirectory(staging + "/.fake")
        try FilePaths.createDirectory(staging + "/externals/node20/bin")
        try await run(Command("cp", [Fixtures.fakeRunner + "/config.sh", Fixtures.fakeRunner + "/run.sh", staging]))
        try AtomicFile.write(apiURL, to: staging + "/.fake/api")
        try AtomicFile.write("0.1", to: staging + "/.fake/sleep")
        try AtomicFile.write("", to: staging + "/.fake/script")
        try AtomicFile.write(
            "#!/bin/sh\nexec python3 \(mountPoint)/fake_worker.py listen \(mountPoint)/queue\n",
            to: staging + "/.fake/listener", mode: 0o755)
        let tarball = directory + "/actions-runner-linux-x64-2.336.0.tar.gz"
        try await run(
            Command("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", staging, "-czf", tarball, "."]))
        return tarball
    }

    static func run(_ command: Command) async throws {
        try await SystemCommandRunner().run(command).checked(command)
    }
}
