import RunnerArchive
import RunnerCore

/// Writes a rootfs tree through RunnerArchive's tree archiver in full-fidelity mode: sorted
/// entries, numeric ownership, all mode bits, device nodes, fifos, hardlinks, `security.*`
/// xattrs (file capabilities), mtimes clamped to `SOURCE_DATE_EPOCH`, zstd.
public struct LibArchiveRootfsWriter: RootfsArchiveWriter {
    /// The zstd level (1–19).
    public var zstdLevel: Int

    public init(zstdLevel: Int = 3) {
        self.zstdLevel = zstdLevel
    }

    public func write(tree: String, to archive: String, sourceDateEpoch: Int64, progress: ProgressReporter)
        async throws(RunnerError)
    {
        let options = TreeArchiver.Options(
            fidelity: .full, modificationTime: sourceDateEpoch, compression: .zstd(level: zstdLevel),
            extendedAttributePrefixes: ["security."])
        let summary = try withArchiveErrors { () throws(ArchiveError) -> TreeArchiver.Summary in
            try TreeArchiver.archive(directory: tree, to: archive, options: options)
        }
        if !summary.skippedSockets.isEmpty {
            progress.stage(
                "left out \(summary.skippedSockets.count) sockets: \(summary.skippedSockets.joined(separator: ", "))")
        }
    }
}
