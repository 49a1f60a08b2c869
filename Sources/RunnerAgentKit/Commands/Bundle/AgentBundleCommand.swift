import ArgumentParser
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent bundle`: check and unpack release bundles.
public struct BundleCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Verify or unpack a release bundle.",
        subcommands: [Verify.self, Unpack.self]
    )

    public init() {}

    static func validateDigest(_ sha256: String?) throws {
        if let sha256, !SHA256Digest.isValidHex(sha256) {
            throw RunnerError(
                .invalidInput, input: "--sha256 \(sha256)", problem: "is not 64 hex digits",
                fix: "pass the digest from SHA256SUMS")
        }
    }

    static func summary(_ manifest: BundleManifest, _ file: String) -> String {
        var text = "\(file): runner bundle \(manifest.bundleVersion) (linux-\(manifest.arch.rawValue))"
        text += ", \(manifest.files.count) files"
        if let commit = manifest.sourceCommit { text += ", commit \(commit)" }
        return text
    }

    /// `runner-agent bundle verify FILE [--sha256 HEX]`.
    public struct Verify: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Check a bundle: its sha256 (when given), safe extraction, and every file against MANIFEST.json.",
            discussion: "Nothing is installed: the bundle is extracted into a scratch directory that is removed."
        )

        @Argument(help: ArgumentHelp("The bundle (.tar.gz).", valueName: "file"))
        var file: String

        @Option(help: ArgumentHelp("The expected sha256 of the bundle file.", valueName: "hex"))
        var sha256: String?

        public init() {}

        public func validate() throws { try BundleCommand.validateDigest(sha256) }

        public func run() async throws {
            let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
            let scratch = "\(base)/runner-bundle-verify-\(getpid())"
            let manifest = try BundleVerifier.verify(bundle: file, expectedSHA256: sha256, scratch: scratch)
            StandardOutput.write("ok: " + BundleCommand.summary(manifest, file) + "\n")
        }
    }

    /// `runner-agent bundle unpack FILE --into DIR`.
    public struct Unpack: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Verify a bundle and unpack it into a directory, atomically.",
            discussion: """
                The bundle is extracted beside DIR, checked against MANIFEST.json, then renamed to DIR. \
                A bundle that fails any check leaves DIR as it was.
                """
        )

        @Argument(help: ArgumentHelp("The bundle (.tar.gz).", valueName: "file"))
        var file: String

        @Option(help: ArgumentHelp("The directory to create.", valueName: "dir"))
        var into: String

        @Option(help: ArgumentHelp("The expected sha256 of the bundle file.", valueName: "hex"))
        var sha256: String?

        @Flag(help: "Replace DIR when it exists.")
        var force = false

        public init() {}

        public func validate() throws { try BundleCommand.validateDigest(sha256) }

        public func run() async throws {
            let manifest = try BundleVerifier.unpack(
                bundle: file, into: into, expectedSHA256: sha256, replaceExisting: force)
            StandardOutput.write("unpacked: " + BundleCommand.summary(manifest, file) + " into \(into)\n")
        }
    }
}
