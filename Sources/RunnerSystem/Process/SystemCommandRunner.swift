import Logging
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// The real ``CommandRunner``: spawns processes through ``Spawner`` (posix_spawn).
///
/// ``run(_:input:output:)`` runs a command to completion: its input on a pipe (empty when
/// none), a non-zero exit returned as data, and with ``OutputMode/capture(limit:)`` the last
/// `limit` bytes of stdout and stderr (never a failure on volume). A command whose output is
/// captured or discarded runs in a session of its own; cancelling the calling task sends its
/// group SIGTERM, then SIGKILL after ``teardownGrace`` (an inherited-output command, in our
/// group, gets the signals alone). The waiting happens on a thread of its own, never on one of
/// the cooperative pool's.
///
/// ``start(_:options:)`` starts a long-lived child and returns its ``ChildProcess``.
///
/// swift-subprocess was the model for these semantics; it is not used because the helper must
/// start children that outlive it (a guest's nspawn, the step relay), which it cannot.
public struct SystemCommandRunner: CommandRunner {
    public var logger: Logger
    /// How long a cancelled command has between SIGTERM and SIGKILL.
    public var teardownGrace: Duration

    public init(logger: Logger = Logger(label: "runner.command"), teardownGrace: Duration = .seconds(5)) {
        self.logger = logger
        self.teardownGrace = teardownGrace
    }

    public func run(_ command: Command, input: [UInt8]?, output: OutputMode) async throws(RunnerError) -> CommandResult
    {
        logger.debug("run", metadata: ["command": "\(command)"])
        var options = SpawnOptions(standardInput: .bytes(input ?? []))
        let limit: Int
        switch output {
        case .capture(let bytes):
            (options.standardOutput, options.standardError, options.grouping) = (.pipe, .pipe, .newSession)
            limit = max(0, bytes)
        case .inherit:
            limit = 0
        case .discard:
            (options.standardOutput, options.standardError, options.grouping) = (.devNull, .devNull, .newSession)
            limit = 0
        }
        let child = try Spawner.spawn(command, options: options)
        let grace = teardownGrace
        let result = await withTaskCancellationHandler {
            await DedicatedThread.run { child.collectBlocking(limit: limit) }
        } onCancel: {
            Self.tearDown(child, grace: grace)
        }
        return CommandResult(
            status: result.status, standardOutput: String(decoding: result.output, as: UTF8.self),
            standardError: String(decoding: result.errorOutput, as: UTF8.self))
    }

    public func start(_ command: Command, options: StartOptions) throws(RunnerError) -> any ProcessHandle {
        logger.debug("start", metadata: ["command": "\(command)"])
        return try Spawner.spawn(command, options: SpawnOptions(options))
    }

    /// SIGTERM to the child's group now and SIGKILL after `grace`, each only while the child is
    /// unreaped (its output is read to the end before it is reaped, so stragglers holding the
    /// output are still reached through the group).
    static func tearDown(_ child: ChildProcess, grace: Duration) {
        child.signalWhileUnreaped(SIGTERM)
        Task.detached {
            try? await Task.sleep(for: grace)
            child.signalWhileUnreaped(SIGKILL)
        }
    }
}
