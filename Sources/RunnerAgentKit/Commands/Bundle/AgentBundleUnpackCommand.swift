import ArgumentParser
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent bundle unpack FILE --into DIR`.
public struct AgentBundleUnpackCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "unpack",
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

    public func validate() throws { try AgentBundleCommand.validateDigest(sha256) }

    public func run() async throws {
        let manifest = try BundleVerifier.unpack(
            bundle: file, into: into, expectedSHA256: sha256, replaceExisting: force)
        StandardOutput.write("unpacked: " + AgentBundleCommand.summary(manifest, file) + " into \(into)\n")
    }
}
