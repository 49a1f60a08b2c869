import ArgumentParser
import RunnerCLI
import Testing

@testable import RunnerAgentKit

/// The `runner-agent` command tree as users, scripts, systemd units and the sudoers rule type it:
/// every path stays, and each one parses.
@Suite struct AgentCommandTreeTests {
    static let paths: [[String]] = [
        ["install"], ["upgrade"], ["rollback"], ["service"], ["hook"],
        ["guest"], ["guest", "start"], ["guest", "exec"], ["guest", "stop"], ["guest", "list"], ["guest", "gc"],
        ["guest", "settings"], ["guest", "pull"], ["guest", "logs"],
        ["image"], ["image", "import"], ["image", "pull"], ["image", "list"], ["image", "remove"],
        ["bundle"], ["bundle", "verify"], ["bundle", "unpack"],
        ["config"], ["config", "check"],
        ["doctor"],
        ["archive"], ["archive", "extract"], ["archive", "list"],
        ["relay"],
    ]

    /// Every path below `command`, by the names the parser matches.
    static func tree(_ command: any ParsableCommand.Type, prefix: [String] = []) -> [[String]] {
        command.configuration.subcommands.flatMap { sub -> [[String]] in
            let path = prefix + [sub.configuration.commandName ?? sub._commandName]
            return [path] + tree(sub, prefix: path)
        }
    }

    @Test func helpNamesTheTool() {
        #expect(RunnerAgentCommand.helpMessage().contains("runner-agent"))
    }

    @Test func theTreeHasExactlyThesePaths() {
        #expect(Self.tree(RunnerAgentCommand.self) == Self.paths)
    }

    /// PATH resolves: `PATH --help` parses, and an unknown option after PATH is reported with
    /// PATH's own usage (the parser reached that command).
    @Test(arguments: paths)
    func everyPathParses(_ path: [String]) throws {
        _ = try RunnerAgentCommand.parseAsRoot(path + ["--help"])
        do {
            _ = try RunnerAgentCommand.parseAsRoot(path + ["--no-such-option"])
            Issue.record("\(path) took --no-such-option")
        } catch {
            let message = RunnerAgentCommand.fullMessage(for: error)
            #expect(message.contains("runner-agent " + path.joined(separator: " ")), "\(message)")
        }
    }

    /// `ci-nspawn-run` (the privileged helper, argv[0] dispatch) is the `guest` tree as root.
    @Test func theHelperTreeIsTheGuestTree() {
        #expect(Self.tree(GuestCommand.self) == Self.paths.filter { $0.count == 2 && $0[0] == "guest" }.map { [$0[1]] })
    }

    @Test(arguments: ["start", "exec", "stop", "list", "gc", "settings"])
    func helperPathsParse(_ name: String) throws {
        _ = try GuestCommand.parseAsRoot([name, "--help"])
        do {
            _ = try GuestCommand.parseAsRoot([name, "--no-such-option"])
            Issue.record("\(name) took --no-such-option")
        } catch {
            let message = GuestCommand.fullMessage(for: error)
            #expect(message.contains("guest \(name)"), "\(message)")
        }
    }

    /// A few real invocations, as the hook, the bootstrap and the units run them.
    @Test func realInvocationsParse() throws {
        #expect(try RunnerAgentCommand.parseAsRoot(["guest", "stop", "rg-0123456789ab"]) is GuestStopCommand)
        #expect(try RunnerAgentCommand.parseAsRoot(["guest", "gc", "--owner-pid", "42"]) is GuestGCCommand)
        #expect(try RunnerAgentCommand.parseAsRoot(["image", "list", "--root", "/tmp/r"]) is ImageListCommand)
        #expect(
            try RunnerAgentCommand.parseAsRoot(["config", "check", "--site", "site.env"]) is AgentConfigCheckCommand)
        #expect(try RunnerAgentCommand.parseAsRoot(["archive", "list", "x.tar"]) is ArchiveListCommand)
        #expect(try RunnerAgentCommand.parseAsRoot(["relay", "rg-0123456789ab", "--uid", "1001"]) is RelayCommand)
        #expect(
            try GuestCommand.parseAsRoot(["exec", "rg-0123456789ab", "--env-stdin", "--", "true"]) is GuestExecCommand)
    }
}
