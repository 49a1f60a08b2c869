import ArgumentParser
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent bundle verify FILE [--sha256 HEX]`.
public struct AgentBundleVerifyCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a bundle: its sha256 (when given), safe extraction, and every file against MANIFEST.json.",
        discussion: "Nothing is installed: the bundle is extracted into a scratch directory that is removed."
    )

    @Argument(help: ArgumentHelp("The bundle (.tar.gz).", valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("The expected sha256 of the bundle file.", valueName: "hex"))
    var sha256: String?

    public init() {}

    public func validate() throws { try AgentBundleCommand.validateDigest(sha256) }

    public func run() async throws {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        let scratch = "\(base)/runner-bundle-verify-\(getpid())"
        let manifest = try BundleVerifier.verify(bundle: file, expectedSHA256: sha256, scratch: scratch)
        StandardOutput.write("ok: " + AgentBundleCommand.summary(manifest, file) + "\n")
    }
}
