import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent guest exec NAME -- COMMAND…`: a command in a guest, as a transient unit.
struct GuestExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command in a guest as a transient unit; output streams, exit status passes through.")

    @Argument(help: "The guest name (from `start`).")
    var name: String

    @Option(help: "The working directory in the guest.")
    var cwd: String?

    @Option(help: ArgumentHelp("A variable NAME=VALUE for the command (not for secrets). Repeatable."))
    var env: [String] = []

    @Flag(help: "Read the environment as a JSON object from stdin (keeps values off command lines).")
    var envStdin = false

    @Option(help: "Stop the command after this many seconds (the unit's RuntimeMaxSec=).")
    var timeout: Double?

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command after --") }
        if let timeout, !(timeout > 0 && timeout <= 86400) {
            throw ValidationError("--timeout \(timeout): give seconds, more than 0 and at most 86400")
        }
        for assignment in env where !assignment.contains("=") {
            throw ValidationError("--env \(assignment): expected NAME=VALUE")
        }
    }

    func run() async throws {
        let manager = try AgentHost.manager()
        var environment: [String: String] = [:]
        if envStdin {
            let input = await StandardInput.read()
            do {
                environment = try JSONDecoder().decode([String: String].self, from: Data(input))
            } catch {
                throw RunnerError(.invalidInput, input: "stdin", problem: "is not a JSON object of strings")
            }
        }
        for assignment in env {
            guard let eq = assignment.firstIndex(of: "=") else { continue }  // validate() refused it
            environment[String(assignment[..<eq])] = String(assignment[assignment.index(after: eq)...])
        }
        let status = try await manager.exec(
            name, command: command, environment: environment, workingDirectory: cwd, timeout: timeout)
        if !status.isSuccess { throw ExitCode(status.shellCode) }
    }
}
