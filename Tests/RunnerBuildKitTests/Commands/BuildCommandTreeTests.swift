import ArgumentParser
import RunnerBuildKit
import Testing

/// The `runner-build` command tree as `ci/release`, the docs and users type it: every path stays,
/// and each one parses.
@Suite struct BuildCommandTreeTests {
    static let paths: [[String]] = [
        ["bundle"], ["rootfs"], ["userdata"],
        ["config"], ["config", "example"], ["config", "check"],
        ["archive"], ["archive", "create"], ["archive", "list"],
    ]

    /// Every path below `command`, by the names the parser matches.
    static func tree(_ command: any ParsableCommand.Type, prefix: [String] = []) -> [[String]] {
        command.configuration.subcommands.flatMap { sub -> [[String]] in
            let path = prefix + [sub.configuration.commandName ?? sub._commandName]
            return [path] + tree(sub, prefix: path)
        }
    }

    @Test func helpNamesTheTool() {
        #expect(RunnerBuildCommand.helpMessage().contains("runner-build"))
    }

    @Test func theTreeHasExactlyThesePaths() {
        #expect(Self.tree(RunnerBuildCommand.self) == Self.paths)
    }

    /// PATH resolves: `PATH --help` parses, and an unknown option after PATH is reported with
    /// PATH's own usage (the parser reached that command).
    @Test(arguments: paths)
    func everyPathParses(_ path: [String]) throws {
        _ = try RunnerBuildCommand.parseAsRoot(path + ["--help"])
        do {
            _ = try RunnerBuildCommand.parseAsRoot(path + ["--no-such-option"])
            Issue.record("\(path) took --no-such-option")
        } catch {
            let message = RunnerBuildCommand.fullMessage(for: error)
            #expect(message.contains("runner-build " + path.joined(separator: " ")), "\(message)")
        }
    }

    @Test func realInvocationsParse() throws {
        #expect(try RunnerBuildCommand.parseAsRoot(["config", "example"]) is BuildConfigExampleCommand)
        #expect(try RunnerBuildCommand.parseAsRoot(["config", "check", "site.env"]) is BuildConfigCheckCommand)
        #expect(
            try RunnerBuildCommand.parseAsRoot(["archive", "create", "--from", ".", "--out", "x.tar.gz"])
                is ArchiveCreateCommand)
    }
}
