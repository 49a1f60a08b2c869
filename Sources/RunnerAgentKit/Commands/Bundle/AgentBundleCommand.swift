import ArgumentParser
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent bundle`: check and unpack release bundles.
public struct AgentBundleCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Verify or unpack a release bundle.",
        subcommands: [AgentBundleVerifyCommand.self, AgentBundleUnpackCommand.self]
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
}
