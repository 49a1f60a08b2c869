import FoundationEssentials

/// The manifest `runner-build rootfs` writes beside `rootfs-<name>-<version>.tar.zst`, and
/// `runner-agent image import --manifest` checks an archive against.
///
/// It records what went into the image (recipe digest, suite, mirror or snapshot, every
/// installed package with its version) and what came out (the archive's name, size and
/// sha256). The JSON has sorted keys so the same bake gives the same bytes.
public struct RootfsManifest: Codable, Sendable, Hashable {
    /// One installed Debian package, as `dpkg-query -W` reports it inside the tree.
    public struct Package: Codable, Sendable, Hashable {
        public var name: String
        public var version: String
        public var architecture: String

        public init(name: String, version: String, architecture: String) {
            self.name = name
            self.version = version
            self.architecture = architecture
        }
    }

    /// The format of this file; readers refuse formats they do not know.
    public static let currentFormat = 1

    public var format: Int
    /// The recipe's name (its directory under `images/`).
    public var name: String
    /// The release version the image was baked for.
    public var version: String
    /// sha256 over the recipe, its overlay files and the bake settings (see the recipe docs).
    public var recipeDigest: String
    public var suite: String
    public var architecture: String
    public var variant: String
    /// The mirror apt used (the snapshot URL when ``snapshot`` is set).
    public var mirror: String
    /// The Debian snapshot timestamp (`20250520T000000Z`), when the recipe pins one.
    public var snapshot: String?
    /// The `SOURCE_DATE_EPOCH` every mtime in the archive is clamped to.
    public var sourceDateEpoch: Int64
    /// `mmdebstrap --version` of the bake.
    public var builder: String
    /// The archive's file name (no directory).
    public var archive: String
    /// The archive's sha256 (lowercase hex).
    public var archiveSHA256: String
    /// The archive's size in bytes.
    public var archiveSize: Int64
    /// Every installed package, sorted by name.
    public var packages: [Package]

    public init(
        name: String, version: String, recipeDigest: String, suite: String, architecture: String,
        variant: String, mirror: String, snapshot: String?, sourceDateEpoch: Int64, builder: String,
        archive: String, archiveSHA256: String, archiveSize: Int64, packages: [Package]
    ) {
        self.format = Self.currentFormat
        self.name = name
        self.version = version
        self.recipeDigest = recipeDigest
        self.suite = suite
        self.architecture = architecture
        self.variant = variant
        self.mirror = mirror
        self.snapshot = snapshot
        self.sourceDateEpoch = sourceDateEpoch
        self.builder = builder
        self.archive = archive
        self.archiveSHA256 = archiveSHA256
        self.archiveSize = archiveSize
        self.packages = packages
    }

    /// The manifest as pretty JSON with sorted keys and a final newline.
    public func encoded() throws(RunnerError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(self)) + [0x0A]
        } catch {
            throw RunnerError(.internal, input: "manifest of \(name)", problem: "could not encode", underlying: error)
        }
    }

    /// Reads and checks a manifest; `source` names it in errors (usually its path).
    public static func decode(_ bytes: [UInt8], source: String) throws(RunnerError) -> RootfsManifest {
        let manifest: RootfsManifest
        do {
            manifest = try JSONDecoder().decode(RootfsManifest.self, from: Data(bytes))
        } catch {
            throw RunnerError(
                .integrity, input: source, problem: "is not a rootfs manifest (\(error))",
                fix: "pass the rootfs-<name>-<version>.manifest.json written by runner-build rootfs")
        }
        guard manifest.format == currentFormat else {
            throw RunnerError(
                .unsupported, input: source,
                problem: "manifest format \(manifest.format) is not supported (this tool reads \(currentFormat))",
                fix: "import with a runner-agent of the same release as the image")
        }
        guard SHA256Digest.isValidHex(manifest.archiveSHA256) else {
            throw RunnerError(
                .integrity, input: source, problem: "archiveSHA256 is not a sha256 hex digest",
                fix: "re-bake the image with runner-build rootfs")
        }
        return manifest
    }

    /// Reads and checks the manifest file at `path`.
    public static func load(_ path: String) throws(RunnerError) -> RootfsManifest {
        try decode(try FilePaths.read(path), source: path)
    }
}

/// Rules for image names: the directory name under `images/` in the repository and under
/// `/var/lib/runner/images/` on a host.
public enum ImageName {
    /// Throws unless `name` is 1–64 characters of `a-z 0-9 . _ -`, starting with a letter or digit.
    public static func validate(_ name: String, input: String = "image name") throws(RunnerError) {
        let bytes = Array(name.utf8)
        let allowed = bytes.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D
        }
        let first = bytes.first.map { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) } ?? false
        guard !bytes.isEmpty, bytes.count <= 64, allowed, first else {
            throw RunnerError(
                .invalidInput, input: "\(input) '\(name)'",
                problem: "is not a valid image name",
                fix: "use 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
        }
    }
}
