import ArgumentParser
import Foundation
import RunnerCore

/// `runner-build rootfs images/<name> [--version V] --out dist/`.
public struct RootfsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rootfs",
        abstract: "Bake a guest base image from a recipe under images/ into OUT/rootfs-<name>-<version>.tar.zst.",
        discussion: """
            Builds the tree with mmdebstrap (merged /usr, SOURCE_DATE_EPOCH), makes it guest-ready \
            (empty machine-id, no hostname or resolv.conf, masked units), and writes the archive and \
            rootfs-<name>-<version>.manifest.json (recipe digest, mirror, packages, sha256). An \
            unchanged recipe reuses the earlier output. Needs root. Recipe format: images/README.md.
            """
    )

    @Argument(help: ArgumentHelp("The recipe directory (holds recipe.conf).", valueName: "images/<name>"))
    var recipe: String

    @Option(help: "The version in the output names.")
    var version: String = RunnerVersion.current

    @Option(help: ArgumentHelp("The output directory.", valueName: "dir"))
    var out: String = "dist"

    @Option(
        help: ArgumentHelp(
            "Clamp every timestamp to this Unix time (default: $SOURCE_DATE_EPOCH, else today 00:00 UTC).",
            valueName: "seconds"))
    var sourceDateEpoch: Int64?

    @Flag(help: "Bake even when an earlier output with the same recipe digest exists.")
    var force = false

    public init() {}

    public func validate() throws {
        guard version.wholeMatch(of: /[A-Za-z0-9][A-Za-z0-9._+-]*/) != nil else {
            throw ValidationError("--version '\(version)' may only hold letters, digits, '.', '_', '+' and '-'")
        }
        if let epoch = sourceDateEpoch, epoch < 0 {
            throw ValidationError("--source-date-epoch must be a non-negative Unix time (got \(epoch))")
        }
        if sourceDateEpoch == nil, let raw = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"],
            Int64(raw) == nil
        {
            throw ValidationError("SOURCE_DATE_EPOCH='\(raw)' is not a Unix time in seconds")
        }
    }

    public func run() async throws {
        let epoch =
            sourceDateEpoch
            ?? ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap { Int64($0) }
            ?? {
                let today = Int64(Date().timeIntervalSince1970) / 86400 * 86400
                StandardError.write(
                    "runner-build: note: SOURCE_DATE_EPOCH is not set; using \(today) (today 00:00 UTC)\n")
                return today
            }()
        let loaded = try Recipe.load(directory: recipe)
        let result = try await RootfsBaker().bake(
            loaded, options: .init(version: version, outputDirectory: out, sourceDateEpoch: epoch, force: force),
            progress: ProgressReporter())
        StandardOutput.write("\(result.archive)\n\(result.manifestPath)\n")
    }
}
