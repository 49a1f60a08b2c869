import ArgumentParser

/// `runner-build config`: the config.env documentation.
public struct BuildConfigCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with config.env, the appliance's configuration.",
        subcommands: [BuildConfigExampleCommand.self, BuildConfigCheckCommand.self]
    )

    public init() {}
}
