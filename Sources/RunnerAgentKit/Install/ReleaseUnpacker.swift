import FoundationEssentials
import RunnerArchive
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

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

/// A release made from a source checkout (bootstrap's git mode: `install --source DIR`): the
/// files of ``BundleLayout/files`` copied from the checkout (the agent from `bin/runner-agent`)
/// with a `MANIFEST.json` like a bundle's, so the installed release looks the same.
public struct CheckoutRelease: ReleaseUnpacker {
    public var checkout: String
    public var version: BundleVersion

    public init(checkout: String, version: BundleVersion) {
        self.checkout = checkout
        self.version = version
    }

    /// The manifest the release would have (deterministic: what "already done" compares).
    public func manifest() throws(RunnerError) -> BundleManifest {
        var files: [BundleManifest.File] = []
        for file in BundleLayout.files {
            let path = sourcePath(file)
            var st = stat()
            guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                throw RunnerError(
                    .notFound, input: path, problem: "is missing from the checkout",
                    fix: "check RUNNER_BOOTSTRAP_REPO_URL and RUNNER_BOOTSTRAP_REPO_REF")
            }
            files.append(
                BundleManifest.File(
                    path: file.path, size: Int64(st.st_size), mode: file.mode,
                    sha256: try SHA256Digest.hex(ofFile: path)))
        }
        return BundleManifest(
            bundleVersion: version, arch: .host, sourceCommit: nil, files: files, runner: try runnerPin())
    }

    /// The GitHub runner the checkout pins (``RunnerPackagePin/pinFile``), or nil without the file.
    func runnerPin() throws(RunnerError) -> RunnerPackagePin? {
        let path = checkout + "/" + RunnerPackagePin.pinFile
        guard FilePaths.exists(path) else { return nil }
        return try RunnerPackagePin.parse(try FilePaths.read(path), arch: .host, source: path)
    }

    func sourcePath(_ file: BundleLayout.File) -> String {
        switch file.source {
        case .agentBinary, .hookBinary: checkout + "/" + file.path
        case .repository(let relative): checkout + "/" + relative
        }
    }

    public func unpack(_ bundle: String, into staging: String) throws(RunnerError) -> String {
        let manifest = try manifest()
        try FilePaths.createDirectory(staging)
        for file in BundleLayout.files {
            try AtomicFile.write(try FilePaths.read(sourcePath(file)), to: staging + "/" + file.path, mode: file.mode)
        }
        try AtomicFile.write(try manifest.encoded(), to: staging + "/" + BundleManifest.fileName, mode: 0o644)
        _ = try BundleVerifier.checkTree(staging, bundle: checkout)
        return version.description
    }
}
