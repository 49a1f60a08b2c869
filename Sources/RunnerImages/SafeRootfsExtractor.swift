import RunnerArchive
import RunnerCore

/// Extracts image archives with RunnerArchive's safe extractor in its rootfs policy:
/// ownership, modes (setuid included), device nodes, fifos, hardlinks and xattrs are kept;
/// absolute paths, `..`, and links that escape the tree are still refused.
public struct SafeRootfsExtractor: ImageArchiveExtractor {
    public var policy: ExtractionPolicy

    public init(policy: ExtractionPolicy = .rootfs) {
        self.policy = policy
    }

    public func extract(archive: String, into directory: String, progress: ProgressReporter) async throws(RunnerError) {
        let policy = policy
        let summary = try withArchiveErrors { () throws(ArchiveError) -> ExtractionSummary in
            try ArchiveExtractor.extract(archive, into: directory, policy: policy) { summary in
                progress.update("unpacking: \(summary.entries) entries, \(summary.contentBytes / 1_000_000) MB")
            }
        }
        progress.finish("unpacked \(summary.entries) entries, \(summary.contentBytes / 1_000_000) MB")
    }
}
