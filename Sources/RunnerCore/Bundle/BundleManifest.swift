import FoundationEssentials
import RunnerArchive

/// `MANIFEST.json`, the first entry of every release bundle: what the bundle is and every file
/// it holds, with size, mode and SHA-256. `runner-agent bundle verify/unpack` check the
/// extracted tree against it: nothing missing, nothing extra, digests and modes equal.
public struct BundleManifest: Sendable, Hashable, Codable {
    /// The archive member holding the manifest.
    public static let fileName = "MANIFEST.json"
    /// The format this code writes and reads.
    public static let currentFormatVersion = 1
    /// The largest manifest accepted, in bytes.
    public static let maxSize = 1 << 20

    /// One bundled file.
    public struct File: Sendable, Hashable, Codable {
        /// Path inside the bundle (`bin/runner-agent`).
        public var path: String
        public var size: Int64
        /// Permission bits as four octal digits (`"0755"`).
        public var mode: String
        /// Lowercase hex SHA-256 of the content.
        public var sha256: String

        public init(path: String, size: Int64, mode: UInt32, sha256: String) {
            self.path = path
            self.size = size
            self.mode = BundleManifest.octal(mode)
            self.sha256 = sha256
        }

        /// ``mode`` as a number, or nil when it is not 1–4 octal digits.
        public var permissions: UInt32? {
            guard (1...4).contains(mode.utf8.count), mode.utf8.allSatisfy({ (48...55).contains($0) }) else {
                return nil
            }
            return UInt32(mode, radix: 8)
        }
    }

    public var formatVersion: Int
    public var bundleVersion: BundleVersion
    public var arch: BundleArch
    /// The git commit the bundle was built from, when known.
    public var sourceCommit: String?
    /// The files, sorted bytewise by path.
    public var files: [File]
    /// The GitHub runner the release pins (`runner` in the JSON; absent in bundles built
    /// without one, which older agents read as before).
    public var runner: RunnerPackagePin?

    public init(
        bundleVersion: BundleVersion,
        arch: BundleArch,
        sourceCommit: String?,
        files: [File],
        runner: RunnerPackagePin? = nil,
        formatVersion: Int = BundleManifest.currentFormatVersion
    ) {
        self.formatVersion = formatVersion
        self.bundleVersion = bundleVersion
        self.arch = arch
        self.sourceCommit = sourceCommit
        self.files = files.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        self.runner = runner
    }

    package static func octal(_ mode: UInt32) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Canonical JSON: sorted keys, two-space indentation, unescaped slashes, final newline.
    public func encoded() throws(RunnerError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(self)) + [10]
        } catch {
            throw RunnerError(.internal, input: Self.fileName, problem: "could not encode", underlying: error)
        }
    }

    /// Decodes and validates a manifest read from `source` (the bundle, for messages).
    public static func decode(_ bytes: [UInt8], source: String) throws(RunnerError) -> BundleManifest {
        let input = "\(source): \(fileName)"
        let manifest: BundleManifest
        do {
            manifest = try JSONDecoder().decode(BundleManifest.self, from: Data(bytes))
        } catch {
            throw RunnerError(
                .integrity, input: input, problem: "is not a valid bundle manifest (\(error))",
                fix: "rebuild the bundle with runner-build bundle")
        }
        guard manifest.formatVersion == currentFormatVersion else {
            throw RunnerError(
                .unsupported, input: input,
                problem: "has format version \(manifest.formatVersion); this agent reads \(currentFormatVersion)",
                fix: "use a runner-agent from the same release as the bundle")
        }
        if let problem = manifest.runner?.problem {
            throw RunnerError(
                .integrity, input: "\(input): runner", problem: problem,
                fix: "rebuild the bundle with runner-build bundle")
        }
        var seen = Set<String>()
        for file in manifest.files {
            let bad: String? =
                if (try? ArchivePath.normalized(file.path)) != file.path || file.path.isEmpty {
                    "is not a normal relative path"
                } else if file.path == fileName {
                    "names the manifest itself"
                } else if !seen.insert(file.path).inserted {
                    "is listed twice"
                } else if file.permissions == nil || (file.permissions ?? 0) & 0o7000 != 0 {
                    "has mode '\(file.mode)' (expected 0644 or 0755 style octal, no setuid/setgid/sticky)"
                } else if !SHA256Digest.isValidHex(file.sha256) || file.sha256.lowercased() != file.sha256 {
                    "has a malformed sha256"
                } else if file.size < 0 {
                    "has a negative size"
                } else {
                    nil
                }
            if let bad {
                throw RunnerError(
                    .integrity, input: "\(input): \(file.path)", problem: bad,
                    fix: "rebuild the bundle with runner-build bundle")
            }
        }
        return manifest
    }
}
