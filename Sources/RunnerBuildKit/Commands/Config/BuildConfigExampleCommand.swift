import ArgumentParser
import RunnerCore

/// `runner-build config example`.
public struct BuildConfigExampleCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "example",
        abstract: "Print a documented example config.env (every key, with its form and default).")

    public init() {}

    public func run() throws {
        print(RunnerConfig.example, terminator: "")
    }
}
