import ArgumentParser
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerSystem

/// `image import` under a test root: `RUNNER_HOST_ROOT` (or `--root`) puts the image there,
/// and the real `/var/lib/runner` is untouched (it once ignored the variable).
@Suite(.requiresRoot, .requires("tar"), .requires("zstd"))
struct ImageImportHostRootTests {
    func archive(_ dir: TemporaryDirectory) async throws -> String {
        let tree = dir.appending("src")
        try AtomicFile.write("ID=canary\n", to: tree + "/etc/os-release")
        let archive = dir.appending("rootfs-canary.tar.zst")
        try await SystemCommandRunner().output(
            Command("tar", ["--zstd", "--numeric-owner", "-C", tree, "-cf", archive, "."]))
        return archive
    }

    @Test(arguments: [true, false])
    func importWritesUnderTheTestRoot(byVariable: Bool) async throws {
        let agent = try #require(HookHarness.agent, "runner-agent is built beside the tests")
        try await withTemporaryDirectory("import-root") { dir in
            let archive = try await archive(dir)
            let name = "canary-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            let root = dir.appending("host")
            var arguments = ["image", "import", archive, "--name", name]
            // Not through sudo, whatever ran the tests: the variable would be ignored.
            var environment: [String: String?] = ["SUDO_UID": nil, "SUDO_GID": nil, "SUDO_USER": nil]
            if byVariable {
                environment[HostRoot.variable] = root
            } else {
                arguments += ["--root", root]
                environment[HostRoot.variable] = nil
            }
            let result = try await SystemCommandRunner().run(
                Command(agent, arguments, environment: environment))
            #expect(result.status.isSuccess, "\(result.standardError)")
            #expect(
                result.standardOutput.contains(root + "/var/lib/runner/images/\(name)/"), "\(result.standardOutput)")
            let layout = HostLayout(root: root)
            #expect(FilePaths.exists(layout.imageRootfs(name) + "/etc/os-release"))
            #expect(!FilePaths.exists(HostLayout().imageDirectory(name)), "the real image store was written")
        }
    }
}
