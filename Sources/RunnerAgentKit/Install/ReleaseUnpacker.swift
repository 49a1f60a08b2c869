import FoundationEssentials
import RunnerArchive
import RunnerCore

/// Unpacks a release bundle: safe extraction beside the target and the manifest check, then a
/// rename into place. The installer only needs this; the bundle format is the archive layer's.
public protocol ReleaseUnpacker: Sendable {
    /// Extracts and verifies `bundle` into the new directory `staging` and returns its version.
    func unpack(_ bundle: String, into staging: String) throws(RunnerError) -> String
}

/// The unpacker over the safe libarchive extractor: `MANIFEST.json` (the archive layer's
/// bundle manifest) names the version and each file's sha256, checked against the extracted
/// tree.
public struct ManifestReleaseUnpacker: ReleaseUnpacker {
    public init() {}

    struct Manifest: Decodable {
        struct File: Decodable {
            let path: String
            let sha256: String
        }
        let bundleVersion: String
        let files: [File]
    }

    public func unpack(_ bundle: String, into staging: String) throws(RunnerError) -> String {
        do throws(ArchiveError) {
            try ArchiveExtractor.extract(bundle, into: staging, policy: .default)
        } catch {
            throw RunnerError(
                .unsafeInput, input: bundle, problem: "could not be unpacked safely: \(error)",
                fix: "download the bundle again and check its sha256")
        }
        let manifestPath = staging + "/MANIFEST.json"
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: Data(try FilePaths.read(manifestPath)))
        } catch {
            throw RunnerError(
                .integrity, input: bundle, problem: "has no readable MANIFEST.json",
                fix: "use a bundle written by runner-build bundle")
        }
        for file in manifest.files {
            let path = try ArchivePathCheck.inside(staging, file.path, bundle: bundle)
            let digest = try SHA256Digest.hex(ofFile: path)
            guard digest == file.sha256 else {
                throw RunnerError(
                    .integrity, input: "\(bundle): \(file.path)",
                    problem: "sha256 \(digest) does not match the manifest",
                    fix: "download the bundle again")
            }
        }
        guard !manifest.bundleVersion.isEmpty, !manifest.bundleVersion.contains("/"),
            !manifest.bundleVersion.hasPrefix(".")
        else {
            throw RunnerError(
                .integrity, input: bundle, problem: "names an unusable version '\(manifest.bundleVersion)'",
                fix: "use a bundle written by runner-build bundle")
        }
        return manifest.bundleVersion
    }
}

enum ArchivePathCheck {
    static func inside(_ root: String, _ relative: String, bundle: String) throws(RunnerError) -> String {
        guard let normalized = try? ArchivePath.normalized(relative), !normalized.isEmpty else {
            throw RunnerError(
                .unsafeInput, input: "\(bundle): \(relative)", problem: "is not a path inside the bundle",
                fix: "use a bundle written by runner-build bundle")
        }
        return root + "/" + normalized
    }
}
