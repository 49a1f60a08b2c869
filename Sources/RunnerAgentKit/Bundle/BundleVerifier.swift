import RunnerArchive
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Checks release bundles: the archive's digest, safe extraction, and the extracted tree
/// against `MANIFEST.json`. Shared by `runner-agent bundle verify/unpack` and the installer.
public enum BundleVerifier {
    /// Requires the SHA-256 of `file` to be `expected` (hex, any case).
    public static func checkDigest(of file: String, expected: String) throws(RunnerError) {
        guard SHA256Digest.isValidHex(expected) else {
            throw RunnerError(
                .invalidInput, input: "--sha256 \(expected)", problem: "is not 64 hex digits",
                fix: "pass the digest from SHA256SUMS")
        }
        let actual = try SHA256Digest.hex(ofFile: file)
        guard actual == expected.lowercased() else {
            throw RunnerError(
                .integrity, input: file, problem: "has sha256 \(actual), expected \(expected.lowercased())",
                fix: "download the bundle again; if it persists, check the pinned digest")
        }
    }

    /// Checks the extracted bundle at `directory` against its `MANIFEST.json`: every listed
    /// file present as a regular file with the listed size, mode and SHA-256; nothing else
    /// but the directories that hold them. `bundle` names the archive in messages.
    @discardableResult
    public static func checkTree(_ directory: String, bundle: String) throws(RunnerError) -> BundleManifest {
        let entries = try withArchiveErrors { () throws(ArchiveError) in try TreeArchiver.list(directory: directory) }
        guard let manifestEntry = entries.first(where: { $0.path == BundleManifest.fileName }),
            manifestEntry.kind == .regularFile
        else {
            throw RunnerError(
                .integrity, input: bundle, problem: "has no \(BundleManifest.fileName)",
                fix: "this is not a runner bundle: build one with runner-build bundle")
        }
        guard manifestEntry.size <= BundleManifest.maxSize else {
            throw RunnerError(.integrity, input: "\(bundle): \(BundleManifest.fileName)", problem: "is too large")
        }
        let manifest = try BundleManifest.decode(
            try FilePaths.read(directory + "/" + BundleManifest.fileName), source: bundle)
        var listed: [String: BundleManifest.File] = [:]
        var directories: Set<String> = []
        for file in manifest.files {
            listed[file.path] = file
            var parent = FilePaths.parent(of: file.path)
            while parent != "." {
                directories.insert(parent)
                parent = FilePaths.parent(of: parent)
            }
        }
        var found: Set<String> = []
        for entry in entries where entry.path != BundleManifest.fileName {
            let input = "\(bundle): \(entry.path)"
            if entry.kind == .directory && directories.contains(entry.path) { continue }
            guard let file = listed[entry.path] else {
                throw RunnerError(
                    .integrity, input: input, problem: "is not listed in \(BundleManifest.fileName) (an extra file)",
                    fix: "the bundle was tampered with: download or build it again")
            }
            guard entry.kind == .regularFile else {
                throw RunnerError(
                    .integrity, input: input, problem: "is a \(entry.kind.rawValue), the manifest lists a file",
                    fix: "the bundle was tampered with: download or build it again")
            }
            guard entry.size == file.size else {
                throw RunnerError(
                    .integrity, input: input, problem: "has \(entry.size) bytes, the manifest says \(file.size)",
                    fix: "the bundle was tampered with: download or build it again")
            }
            guard entry.permissions == file.permissions else {
                throw RunnerError(
                    .integrity, input: input,
                    problem: "has mode \(BundleManifest.octal(entry.permissions)), the manifest says \(file.mode)",
                    fix: "the bundle was tampered with: download or build it again")
            }
            let digest = try SHA256Digest.hex(ofFile: directory + "/" + entry.path)
            guard digest == file.sha256 else {
                throw RunnerError(
                    .integrity, input: input, problem: "has sha256 \(digest), the manifest says \(file.sha256)",
                    fix: "the bundle was tampered with: download or build it again")
            }
            found.insert(entry.path)
        }
        if let missing = manifest.files.first(where: { !found.contains($0.path) }) {
            throw RunnerError(
                .integrity, input: "\(bundle): \(missing.path)", problem: "is listed in the manifest but missing",
                fix: "the bundle is incomplete: download or build it again")
        }
        return manifest
    }

    /// Verifies `bundle` without installing it: digest (when given), safe extraction into a
    /// scratch directory beside `scratch`, the manifest check; the scratch tree is removed.
    @discardableResult
    public static func verify(bundle: String, expectedSHA256: String?, scratch: String) throws(RunnerError)
        -> BundleManifest
    {
        try requireReadable(bundle)
        if let expectedSHA256 { try checkDigest(of: bundle, expected: expectedSHA256) }
        let staged = try withArchiveErrors { () throws(ArchiveError) in
            try ArchiveExtractor.stage(bundle, for: scratch, policy: .default)
        }
        defer { staged.discard() }
        return try checkTree(staged.path, bundle: bundle)
    }

    /// Unpacks `bundle` into `target`: digest (when given), safe extraction beside it, the
    /// manifest check, then a rename into place. A failed check leaves `target` as it was.
    @discardableResult
    public static func unpack(
        bundle: String,
        into target: String,
        expectedSHA256: String?,
        replaceExisting: Bool
    ) throws(RunnerError) -> BundleManifest {
        try requireReadable(bundle)
        if let expectedSHA256 { try checkDigest(of: bundle, expected: expectedSHA256) }
        if !replaceExisting && FilePaths.exists(target) {
            throw RunnerError(
                .alreadyExists, input: target, problem: "already exists",
                fix: "remove it, or pass --force to replace it")
        }
        let staged = try withArchiveErrors { () throws(ArchiveError) in
            try ArchiveExtractor.stage(bundle, for: target, policy: .default)
        }
        let manifest: BundleManifest
        do throws(RunnerError) {
            manifest = try checkTree(staged.path, bundle: bundle)
        } catch {
            staged.discard()
            throw error
        }
        try withArchiveErrors { () throws(ArchiveError) in try staged.commit(replacingExisting: replaceExisting) }
        return manifest
    }

    static func requireReadable(_ bundle: String) throws(RunnerError) {
        guard access(bundle, R_OK) == 0 else {
            let missing = errno == ENOENT
            throw RunnerError(
                missing ? .notFound : .permission, input: bundle,
                problem: missing ? "does not exist" : "is not readable",
                fix: missing ? "check the path to the bundle" : "run as a user that can read it")
        }
    }
}
