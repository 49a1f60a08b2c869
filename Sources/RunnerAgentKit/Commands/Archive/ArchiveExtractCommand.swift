import ArgumentParser
import RunnerArchive
import RunnerCore

/// `runner-agent archive extract FILE --into DIR`.
public struct ArchiveExtractCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Extract an archive into a new directory, refusing anything unsafe.",
        discussion: """
            The default policy refuses absolute paths, '..', entries through symlinks, symlinks and \
            hardlinks leaving DIR, device nodes, fifos, sockets, setuid/setgid bits and oversized entries. \
            --rootfs also restores owners, devices, fifos, setuid/setgid and xattrs (needs root). The \
            archive is extracted beside DIR and renamed at the end: a refused archive leaves DIR as it was.
            """
    )

    @Argument(help: ArgumentHelp("The archive (.tar, .tar.gz, .tar.zst, .tar.xz).", valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("The directory to create.", valueName: "dir"))
    var into: String

    @Flag(help: "Use the root file system policy.")
    var rootfs = false

    @Flag(help: "Replace DIR when it exists.")
    var force = false

    public init() {}

    public func run() async throws {
        let progress = ProgressReporter()
        let summary = try withArchiveErrors { () throws(ArchiveError) in
            try ArchiveExtractor.extract(
                file, into: into, policy: rootfs ? .rootfs : .default, replaceExisting: force,
                progress: { progress.update("extracting: \($0.entries) entries, \($0.contentBytes >> 20) MiB") })
        }
        progress.finish("\(into): \(summary.entries) entries, \(summary.contentBytes) bytes")
    }
}
