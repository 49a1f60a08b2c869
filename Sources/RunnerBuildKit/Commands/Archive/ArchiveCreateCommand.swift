import ArgumentParser
import RunnerArchive
import RunnerCore

/// `runner-build archive create`.
public struct ArchiveCreateCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Archive a directory tree, entries sorted, mtimes from SOURCE_DATE_EPOCH.",
        discussion: """
            Reproducible mode (default): root-owned entries, normalised modes, mtime = SOURCE_DATE_EPOCH; \
            regular files, directories and symlinks only. --full keeps numeric owners, all mode bits, \
            devices, fifos, hardlinks and security.* xattrs, with mtimes clamped to SOURCE_DATE_EPOCH.
            """
    )

    @Option(help: ArgumentHelp("The directory to archive.", valueName: "dir"))
    var from: String

    @Option(help: ArgumentHelp("The archive to write (.tar.gz, .tar.zst or .tar).", valueName: "file"))
    var out: String

    @Flag(help: "Full fidelity (root file systems) instead of reproducible mode.")
    var full = false

    @Option(help: "gzip level 1-9 (for .tar.gz; default 6).")
    var gzipLevel: Int?

    @Option(help: "zstd level 1-19 (for .tar.zst; default 3).")
    var zstdLevel: Int?

    @Flag(help: "Replace an existing archive.")
    var force = false

    public init() {}

    func compression() throws -> ArchiveCompression {
        guard var compression = ArchiveCompression(fileName: out) else {
            throw RunnerError(
                .invalidInput, input: "--out \(out)", problem: "has no known archive extension",
                fix: "name it .tar.gz, .tar.zst or .tar")
        }
        if let gzipLevel {
            guard case .gzip = compression, (1...9).contains(gzipLevel) else {
                throw RunnerError(
                    .invalidInput, input: "--gzip-level \(gzipLevel)", problem: "needs a .tar.gz output and 1-9")
            }
            compression = .gzip(level: gzipLevel)
        }
        if let zstdLevel {
            guard case .zstd = compression, (1...19).contains(zstdLevel) else {
                throw RunnerError(
                    .invalidInput, input: "--zstd-level \(zstdLevel)", problem: "needs a .tar.zst output and 1-19")
            }
            compression = .zstd(level: zstdLevel)
        }
        return compression
    }

    public func validate() throws {
        _ = try compression()
    }

    public func run() async throws {
        let options = TreeArchiver.Options(
            fidelity: full ? .full : .reproducible,
            modificationTime: try withArchiveErrors { () throws(ArchiveError) in
                try SourceDateEpoch.fromEnvironment()
            },
            compression: try compression())
        let summary = try withArchiveErrors { () throws(ArchiveError) in
            try TreeArchiver.archive(directory: from, to: out, options: options, replaceExisting: force)
        }
        StandardOutput.write("\(out): \(summary.entries) entries, \(summary.contentBytes) bytes of content\n")
    }
}
