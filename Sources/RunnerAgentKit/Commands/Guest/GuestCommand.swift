import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent guest …`, installed as `/usr/local/bin/ci-nspawn-run`: the one privileged helper.
public struct GuestCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Boot, enter, stop and sweep ephemeral systemd-nspawn guests (installed as ci-nspawn-run).",
        discussion: """
            Only images from the local store, mount sources under the runner's work and externals \
            directories (or RUNNER_GUEST_MOUNT_ALLOW), and guest names this helper generated are accepted.
            """,
        subcommands: [
            GuestStartCommand.self, GuestExecCommand.self, GuestStopCommand.self, GuestListCommand.self,
            GuestGCCommand.self, GuestSettingsCommand.self, GuestPullCommand.self, GuestLogsCommand.self,
        ]
    )

    public init() {}

    /// Runs the tree as `ci-nspawn-run` (argv[0] dispatch): `arguments` excludes the program name.
    public static func mainAsHelper(_ arguments: [String]) async {
        do {
            var command = try parseAsRoot(arguments)
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
