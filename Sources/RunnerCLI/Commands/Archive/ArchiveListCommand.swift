import ArgumentParser
import RunnerArchive
import RunnerCore

/// `runner-agent archive list FILE` and `runner-build archive list FILE`: one command in both
/// trees.
public struct ArchiveListCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List an archive's entries like tar -tv.")

    @Argument(help: ArgumentHelp("The archive.", valueName: "file"))
    var file: String

    public init() {}

    public func run() async throws {
        let entries = try withArchiveErrors { () throws(ArchiveError) in try ArchiveReader.list(file) }
        StandardOutput.write(ArchiveListing.render(entries))
    }
}
