import ArgumentParser
import RunnerCore

/// `runner-build config`: the config.env documentation.
public struct BuildConfigCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with config.env, the appliance's configuration.",
        subcommands: [Example.self]
    )

    public init() {}

    /// `runner-build config example`.
    public struct Example: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Print a documented example config.env (every key, with its form and default).")

        public init() {}

        public func run() throws {
            print(RunnerConfig.example, terminator: "")
        }
    }
}
