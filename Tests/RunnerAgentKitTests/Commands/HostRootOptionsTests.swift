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
