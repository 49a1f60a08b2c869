import ArgumentParser
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerSystem

/// `--root` and `RUNNER_HOST_ROOT`: one rule (``HostRoot``) for every command that touches host
/// paths, with sudo's boundary (the variable is ignored when called through sudo).
struct HostRootOptionsTests {
    static func environment(_ values: [String: String]) -> (String) -> String? {
        { name in values[name].flatMap { $0.isEmpty ? nil : $0 } }
    }

    static func layout(_ arguments: [String], _ environment: [String: String]) throws -> HostLayout {
        try HostRootOptions.parse(arguments).layout(environment: Self.environment(environment))
    }

    @Test func defaultIsTheRealRoot() throws {
        #expect(try Self.layout([], [:]).root == "/")
        #expect(try Self.layout([], ["RUNNER_HOST_ROOT": ""]).root == "/")
    }

    @Test func theVariableIsTheDefaultAndTheOptionWins() throws {
        #expect(try Self.layout([], ["RUNNER_HOST_ROOT": "/tmp/t"]).root == "/tmp/t")
        #expect(try Self.layout(["--root", "/tmp/o"], ["RUNNER_HOST_ROOT": "/tmp/t"]).root == "/tmp/o")
        #expect(try Self.layout(["--root=/tmp/o/"], [:]).root == "/tmp/o")
    }

    /// sudo's boundary: through sudo the variable is ignored (the helper's callers must not point
    /// it at a tree of their own); an explicit `--root` is the sudo caller's own argument.
    @Test func throughSudoTheVariableIsIgnored() throws {
        let sudo = ["RUNNER_HOST_ROOT": "/tmp/t", "SUDO_UID": "1000", "SUDO_GID": "1000"]
        #expect(try Self.layout([], sudo).root == "/")
        #expect(try Self.layout(["--root", "/tmp/o"], sudo).root == "/tmp/o")
        #expect(HostRoot.calledThroughSudo(environment: Self.environment(sudo)))
        #expect(!HostRoot.calledThroughSudo(environment: Self.environment(["RUNNER_HOST_ROOT": "/tmp/t"])))
        #expect(try HostRoot.layout(option: nil, environment: Self.environment(sudo)).root == "/")
    }

    /// A relative root is refused, never silently replaced by `/`.
    @Test func aRelativeRootIsRefused() throws {
        #expect(throws: (any Error).self) { try HostRootOptions.parse(["--root", "tmp/t"]) }
        let error = #expect(throws: RunnerError.self) {
            try HostRoot.layout(option: nil, environment: Self.environment(["RUNNER_HOST_ROOT": "tmp/t"]))
        }
        #expect(error?.input == "RUNNER_HOST_ROOT")
        #expect(error?.problem.contains("not an absolute path") == true)
    }

    /// Every command that touches host paths takes `--root` from the one option group.
    @Test func everyHostCommandTakesRoot() throws {
        let root = ["--root", "/tmp/r"]
        #expect(try ServiceCommand.parse(root).host.root == "/tmp/r")
        #expect(try DoctorCommand.parse(root).host.root == "/tmp/r")
        #expect(try InstallCommand.parse(root).host.root == "/tmp/r")
        #expect(try AgentConfigCheckCommand.parse(root).host.root == "/tmp/r")
        #expect(try ImageImportCommand.parse(["f.tar.zst", "--name", "x"] + root).options.host.root == "/tmp/r")
        #expect(try ImageListCommand.parse(root).options.host.root == "/tmp/r")
        #expect(try ImageRemoveCommand.parse(["x"] + root).options.host.root == "/tmp/r")
        #expect(try ServiceCommand.parse([]).host.root == nil)
        for command in [["service"], ["doctor"], ["install"], ["config", "check"], ["image", "list"]] {
            #expect(throws: (any Error).self, "\(command)") {
                try RunnerAgentCommand.parseAsRoot(command + ["--root", "relative"])
            }
        }
    }
}

/// `image import` under a test root: `RUNNER_HOST_ROOT` (or `--root`) puts the image there,
/// and the real `/var/lib/runner` is untouched (it once ignored the variable).
@Suite(.requiresRoot, .requires("tar"), .requires("zstd"))
struct ImageImportHostRootTests {
    func archive(_ dir: TemporaryDirectory) async throws -> String {
        let tree = dir.appending("src")
        try AtomicFile.write("ID=canary\n", to: tree + "/etc/os-release")
        let archive = dir.appending("rootfs-canary.tar.zst")
        try await SubprocessCommandRunner().output(
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
            let result = try await SubprocessCommandRunner().run(
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
