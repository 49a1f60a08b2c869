import FoundationEssentials
import RunnerArchive
import RunnerCore

/// Unpacks a release bundle: safe extraction beside the target and the manifest check, then a
/// rename into place. The installer only needs this; the bundle format is the archive layer's.
public protocol ReleaseUnpacker: Sendable {
    /// Extracts and verifies `bundle` into the new directory `staging` and returns its version.
    func unpack(_ bundle: String, into staging: String) throws(RunnerError) -> String
}

/// The archive layer's bundle unpacking (``BundleVerifier/unpack(bundle:into:expectedSHA256:replaceExisting:)``):
/// optional digest, safe extraction beside the target, every file checked against
/// `MANIFEST.json` (nothing missing, nothing extra), then a rename into place.
public struct ManifestReleaseUnpacker: ReleaseUnpacker {
    /// The bundle's pinned sha256 (`RUNNER_BUNDLE_SHA256`), when known.
    public var expectedSHA256: String?

    public init(expectedSHA256: String? = nil) { self.expectedSHA256 = expectedSHA256 }

    public func unpack(_ bundle: String, into staging: String) throws(RunnerError) -> String {
        let manifest = try BundleVerifier.unpack(
            bundle: bundle, into: staging, expectedSHA256: expectedSHA256, replaceExisting: false)
        return manifest.bundleVersion.description
    }
}
