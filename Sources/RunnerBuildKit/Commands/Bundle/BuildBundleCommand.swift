import ArgumentParser
import Logging
import RunnerArchive
import RunnerCore
import RunnerSystem

/// `runner-build bundle`: the release bundle tarball.
public struct BuildBundleCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Write the reproducible release bundle (runner-bundle-<version>-linux-<arch>.tar.gz).",
        discussion: """
            The bundle holds MANIFEST.json first, then bin/runner-agent and bin/runner-hook, the units and the scripts, laid out \
            as they are installed under /usr/local/lib/runner/releases/<version>/. Entries are sorted, owned \
            by root, stamped with SOURCE_DATE_EPOCH (default \(SourceDateEpoch.defaultValue), 2025-01-01) and \
            gzip-compressed without a timestamp: the same inputs give the same bytes. Prints the sha256.

            --runner-version (and --runner-sha256, the sha256 of actions-runner-linux-<arch>-<version>.tar.gz \
            for the bundle's architecture) pin the GitHub runner in MANIFEST.json: the installer uses it when \
            config.env sets no RUNNER_VERSION. ci/release passes both from ci/actions-runner.pin.
            """
    )

    @Option(help: "The bundle version, vMAJOR.MINOR[.PATCH][-suffix] (e.g. v1.2).")
    var version: String

    @Option(help: ArgumentHelp("The runner-agent binary to bundle.", valueName: "path"))
    var agent: String

    @Option(
        help: ArgumentHelp("The runner-hook binary to bundle (default: runner-hook beside --agent).", valueName: "path")
    )
    var hook: String?

    @Option(help: ArgumentHelp("The output directory.", valueName: "dir"))
    var out: String = "dist"

    @Option(help: ArgumentHelp("The repository root holding cloud-init/ and images/host/.", valueName: "dir"))
    var source: String = "."

    @Flag(help: "Replace an existing bundle file.")
    var force = false

    @Option(help: ArgumentHelp("The GitHub runner version the release pins (X.Y.Z).", valueName: "version"))
    var runnerVersion: String?

    @Option(
        name: .customLong("runner-sha256"),
        help: ArgumentHelp("The sha256 of that runner's tarball for the bundle's architecture.", valueName: "hex"))
    var runnerSHA256: String?

    public init() {}

    public func validate() throws {
        _ = try BundleVersion(version)
        _ = try runnerPin()
        _ = try withArchiveErrors { () throws(ArchiveError) in try SourceDateEpoch.fromEnvironment() }
    }

    public func run() async throws {
        let logger = Logger(label: "runner.bundle")
        let epoch = try withArchiveErrors { () throws(ArchiveError) in try SourceDateEpoch.fromEnvironment() }
        let commit = await BundleBuilder.sourceCommit(of: source, runner: SystemCommandRunner(logger: logger))
        let inputs = BundleBuilder.Inputs(
            version: try BundleVersion(version), agent: agent, hook: hook, sourceDirectory: source,
            outputDirectory: out,
            sourceCommit: commit, modificationTime: epoch, force: force, runner: try runnerPin())
        let output = try BundleBuilder(logger: logger).build(inputs)
        StandardOutput.write("\(output.sha256)  \(output.path)\n")
    }

    /// The pin of `--runner-version`/`--runner-sha256`, or nil without them.
    func runnerPin() throws(RunnerError) -> RunnerPackagePin? {
        guard let runnerVersion else {
            guard runnerSHA256 == nil else {
                throw RunnerError(
                    .invalidInput, input: "--runner-sha256", problem: "pins no runner version",
                    fix: "pass --runner-version with it")
            }
            return nil
        }
        return try RunnerPackagePin(
            checking: runnerVersion, sha256: runnerSHA256, input: "--runner-version/--runner-sha256")
    }
}
