import RunnerArchive
import RunnerCore

/// Puts a release bundle into the host's release directory (`releases/<version>/`), verified.
/// The installer calls this; `runner-agent bundle unpack` does the same into any directory.
public struct BundleUnpacker: Sendable {
    public var layout: HostLayout

    public init(layout: HostLayout = HostLayout()) {
        self.layout = layout
    }

    /// The manifest of `bundle`, read from its first member without extracting anything else.
    public static func peekManifest(_ bundle: String) throws(RunnerError) -> BundleManifest {
        let bytes = try withArchiveErrors { () throws(ArchiveError) in
            try ArchiveReader.readMember(BundleManifest.fileName, from: bundle, limit: BundleManifest.maxSize)
        }
        return try BundleManifest.decode(bytes, source: bundle)
    }

    /// Unpacks `bundle` into `releases/<its version>/` and returns the manifest and the
    /// directory. A release directory that already exists and passes the manifest check is
    /// kept (re-running converges); one that fails it is replaced.
    public func installRelease(bundle: String, expectedSHA256: String?) throws(RunnerError) -> (
        manifest: BundleManifest, directory: String
    ) {
        if let expectedSHA256 { try BundleVerifier.checkDigest(of: bundle, expected: expectedSHA256) }
        let manifest = try Self.peekManifest(bundle)
        let directory = layout.releaseDirectory(manifest.bundleVersion.description)
        if FilePaths.exists(directory), let existing = try? BundleVerifier.checkTree(directory, bundle: directory),
            existing == manifest
        {
            return (manifest, directory)
        }
        let unpacked = try BundleVerifier.unpack(
            bundle: bundle, into: directory, expectedSHA256: nil, replaceExisting: true)
        guard unpacked == manifest else {
            throw RunnerError(
                .integrity, input: bundle, problem: "changed while it was being unpacked",
                fix: "download the bundle again")
        }
        return (manifest, directory)
    }
}
