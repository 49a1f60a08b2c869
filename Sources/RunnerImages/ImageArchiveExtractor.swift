import FoundationEssentials
import Logging
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Turns an image archive into a directory tree. The store's default is the safe libarchive
/// reader in its rootfs policy; the protocol exists so the store does not care which.
public protocol ImageArchiveExtractor: Sendable {
    /// Extracts `archive` into `directory`, which does not exist yet (its parent does) and
    /// appears only when the extraction is complete.
    func extract(archive: String, into directory: String, progress: ProgressReporter) async throws(RunnerError)
}
