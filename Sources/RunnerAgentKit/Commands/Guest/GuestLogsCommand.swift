import ArgumentParser
import RunnerCore
import RunnerGuests

/// `runner-agent guest logs NAME [--lines N]`: the end of a guest's log (for a guest without an
/// init: its main process's output, a service's own log), which the hook shows in the job log
/// when a service fails.
struct GuestLogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Print the last lines of a guest's log.")

    @Argument(help: "The guest's name.")
    var name: String

    @Option(help: "How many lines (1-1000).")
    var lines: Int = 20

    func validate() throws {
        guard (1...1000).contains(lines) else { throw ValidationError("--lines must be 1-1000") }
    }

    func run() async throws {
        let manager = try AgentHost.manager()
        try GuestName.check(name)
        let text = manager.log(name, lines: lines)
        if !text.isEmpty { StandardOutput.write(text + "\n") }
    }
}
