import ArgumentParser
import RunnerCLI

/// `runner-agent archive`: safe extraction and listing of tar archives (what bundle unpack and
/// image import use; `ci/bench archive` times it against bsdtar).
public struct AgentArchiveCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Safely extract or list tar archives.",
        subcommands: [ArchiveExtractCommand.self, ArchiveListCommand.self]
    )

    public init() {}
}
