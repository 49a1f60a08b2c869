import ArgumentParser
import RunnerCore

/// `runner-agent config`: checks config.env on a host.
public struct AgentConfigCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with /etc/runner/config.env.",
        subcommands: [AgentConfigCheckCommand.self]
    )

    public init() {}
}
