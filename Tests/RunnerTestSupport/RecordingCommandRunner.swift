import RunnerCore
import Synchronization

/// A ``CommandRunner`` that spawns nothing: it records every command and answers from a
/// script (first matching rule wins; default: success with empty output).
public final class RecordingCommandRunner: CommandRunner {
    public struct Rule: Sendable {
        let matches: @Sendable (Command) -> Bool
        let result: CommandResult
    }

    private let state = Mutex<(commands: [Command], rules: [Rule])>(([], []))

    public init() {}

    /// Every command run so far, in order.
    public var commands: [Command] { state.withLock { $0.commands } }

    /// Answers commands whose executable's last path component is `executable` with `result`.
    public func answer(_ executable: String, with result: CommandResult) {
        answer(when: { FilePaths.basename($0.executable) == executable }, with: result)
    }

    /// Answers commands matching `predicate` with `result`.
    public func answer(when predicate: @escaping @Sendable (Command) -> Bool, with result: CommandResult) {
        state.withLock { $0.rules.append(Rule(matches: predicate, result: result)) }
    }

    public func run(_ command: Command, input: [UInt8]?, output: OutputMode) async throws(RunnerError) -> CommandResult
    {
        state.withLock { state in
            state.commands.append(command)
            return state.rules.first(where: { $0.matches(command) })?.result ?? CommandResult(status: .exited(0))
        }
    }
}
