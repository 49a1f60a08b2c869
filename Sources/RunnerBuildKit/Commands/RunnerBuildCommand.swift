import ArgumentParser
import RunnerCore

/// `runner-build`: the release side. Renders user-data, writes bundles, bakes rootfs images.
public struct RunnerBuildCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "runner-build",
        abstract: "Build the release artefacts of the runner appliance.",
        discussion: """
            Everything lands in one output directory (dist/ by convention) and is reproducible: \
            the same inputs and SOURCE_DATE_EPOCH give the same bytes.
            """,
        version: RunnerVersion.current,
        subcommands: [
            BuildBundleCommand.self,
            RootfsCommand.self,
            UserDataCommand.self,
            BuildConfigCommand.self,
            BuildArchiveCommand.self,
        ]
    )

    public init() {}
}
