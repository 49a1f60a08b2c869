import ArgumentParser
import Logging
import RunnerCore

/// `runner-agent rollback`: returns the host to the release `previous` names.
public struct RollbackCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Return this host to the release the last upgrade replaced, between jobs.",
        discussion: """
            The same move as upgrade, to /usr/local/lib/runner/previous: run its agent once, drain \
            runner.service (a running job may finish for up to 240 s), swap current and previous, install \
            its units and scripts, start runner.service and wait until it is active and stays so; on a \
            failure the release that ran before runs again. Fails when no previous release is kept.
            """
    )

    @Option(help: "How long runner.service may take to come up, in seconds, before the release it left returns.")
    var startTimeout = 90

    @Option(help: "The config.env to read (default: /etc/runner/config.env under --root).")
    var config: String?

    @OptionGroup var host: HostRootOptions

    public init() {}

    public func validate() throws {
        guard startTimeout > 0 else { throw ValidationError("--start-timeout must be positive") }
    }

    public func run() async throws {
        let logger = Logger(label: "runner.rollback")
        do {
            var upgrader = try Upgrader.forCommand(layout: try host.layout(), config: config, logger: logger)
            upgrader.timing.startTimeout = .seconds(startTimeout)
            _ = try await upgrader.rollback()
        } catch {
            RunnerCore.StandardError.write("runner-agent: error: \(error)\n")
            throw ExitCode.failure
        }
    }
}
