import ArgumentParser
import RunnerCLI

/// `runner-build archive`: the archive writer on any directory (what the bundle and rootfs
/// commands use; `ci/bench archive` times it against bsdtar).
public struct BuildArchiveCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Write or list tar archives with the runner's libarchive layer.",
        subcommands: [ArchiveCreateCommand.self, ArchiveListCommand.self]
    )

    public init() {}
}
