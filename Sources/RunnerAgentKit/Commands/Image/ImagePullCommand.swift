import ArgumentParser
import Logging
import RunnerCore
import RunnerImages

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent image pull REF`.
public struct ImagePullCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull a registry image (node:20, ghcr.io/org/ci:1.4, name@sha256:…) into the store.",
        discussion: """
            Always asks the registry (a moved tag is pulled again; blobs already here are not). \
            Credentials come from RUNNER_REGISTRY_AUTH_FILE; RUNNER_REGISTRIES and \
            RUNNER_REGISTRY_MIRRORS apply.
            """)

    @Argument(help: "The image reference.")
    var reference: String

    @OptionGroup var options: ImageStoreOptions

    public init() {}

    public func run() async throws {
        let reference = try ImageReference(parsing: reference)
        let layout = try options.host.layout()
        let config = try RegistryHost.config(layout: layout)
        let store = RegistryHost.store(layout: layout, config: config, logger: Logger(label: "runner.registry"))
        // Progress on stderr (a redrawn line on a terminal, plain lines otherwise); stdout is the answer.
        let progress = ProgressReporter(isTerminal: isatty(2) == 1) { StandardError.write($0) }
        let image = try await store.pull(reference, credentials: nil, progress: progress)
        if let budget = config.imageCacheMax {
            try store.enforceBudget(
                maxBytes: budget, keeping: RegistryHost.treesInUse(layout: layout).union([image.treeDirectory]))
        }
        StandardOutput.write("\(image.reference)\t\(image.manifestDigest)\t\(image.treeDirectory)\n")
    }
}
