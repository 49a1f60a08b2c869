import RunnerCore
import Synchronization

/// A ``CommandRunner`` that spawns nothing: it records every command and answers from a
/// script (first matching rule wins; default: success with empty output).
public final class RecordingCommandRunner: CommandRunner {
    public struct Rule: Sendable {
        let matches: @Sendable (Command) -> Bool
        let result: CommandResult
    }

    /// How ``start(_:options:)`` answers commands that match.
    public struct StartRule: Sendable {
        let matches: @Sendable (Command) -> Bool
        let process: @Sendable () -> ScriptedProcess
    }

    private struct State {
        var commands: [Command] = []
        var inputs: [[UInt8]?] = []
        var rules: [Rule] = []
        var started: [(command: Command, options: StartOptions, process: ScriptedProcess)] = []
        var startRules: [StartRule] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Every command run so far, in order (not those started: see ``started``).
    public var commands: [Command] { state.withLock { $0.commands } }

    /// The standard input each of ``commands`` was given (nil: none), in the same order.
    public var inputs: [[UInt8]?] { state.withLock { $0.inputs } }

    /// Every command started so far, its options and the scripted process it got, in order.
    public var started: [(command: Command, options: StartOptions, process: ScriptedProcess)] {
        state.withLock { $0.started }
    }

    /// Answers commands whose executable's last path component is `executable` with `result`.
    public func answer(_ executable: String, with result: CommandResult) {
        answer(when: { FilePaths.basename($0.executable) == executable }, with: result)
    }

    /// Answers commands matching `predicate` with `result`.
    public func answer(when predicate: @escaping @Sendable (Command) -> Bool, with result: CommandResult) {
        state.withLock { $0.rules.append(Rule(matches: predicate, result: result)) }
    }

    /// Starts commands whose executable's last path component is `executable` as the process
    /// `make` returns (a fresh one per start).
    public func answerStart(_ executable: String, with make: @escaping @Sendable () -> ScriptedProcess) {
        answerStart(when: { FilePaths.basename($0.executable) == executable }, with: make)
    }

    /// Starts commands matching `predicate` as the process `make` returns.
    public func answerStart(
        when predicate: @escaping @Sendable (Command) -> Bool, with make: @escaping @Sendable () -> ScriptedProcess
    ) {
        state.withLock { $0.startRules.append(StartRule(matches: predicate, process: make)) }
    }

    /// Records `command` and returns a scripted process (the first matching rule's; default: one
    /// that has exited 0 with no output). Nothing is spawned.
    public func start(_ command: Command, options: StartOptions) throws(RunnerError) -> any ProcessHandle {
        state.withLock { state in
            let process =
                state.startRules.first(where: { $0.matches(command) })?.process()
                ?? ScriptedProcess(status: .exited(0))
            state.started.append((command, options, process))
            return process
        }
    }

    public func run(_ command: Command, input: [UInt8]?, output: OutputMode) async throws(RunnerError) -> CommandResult
    {
        state.withLock { state in
            state.commands.append(command)
            state.inputs.append(input)
            return state.rules.first(where: { $0.matches(command) })?.result ?? CommandResult(status: .exited(0))
        }
    }
}
