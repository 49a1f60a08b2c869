/// How a command's exit ended: data, not an error. ``CommandResult/checked(_:)`` is the one
/// place that turns an unsuccessful one into a ``RunnerError``.
public enum ExitStatus: Sendable, Hashable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public var isSuccess: Bool { self == .exited(0) }

    /// The status a shell would report: the exit code, or 128 + signal.
    public var shellCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exit status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

/// What a captured run gave back. Output is bounded by the runner's capture limit.
public struct CommandResult: Sendable, Hashable {
    public var status: ExitStatus
    public var standardOutput: String
    public var standardError: String

    public init(status: ExitStatus, standardOutput: String = "", standardError: String = "") {
        self.status = status
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    /// Returns self when the command succeeded; otherwise a ``RunnerError`` naming the
    /// command, its status and the last lines it wrote to stderr.
    @discardableResult
    public func checked(_ command: Command, fix: String? = nil) throws(RunnerError) -> CommandResult {
        guard status.isSuccess else {
            throw RunnerError.commandFailed(command, status: status, stderr: standardError, fix: fix)
        }
        return self
    }
}

extension RunnerError {
    /// The one conversion from an unsuccessful command to an error: program, status and
    /// a bounded tail of its stderr (the lines a user needs, e.g. apt's error lines).
    public static func commandFailed(
        _ command: Command,
        status: ExitStatus,
        stderr: String,
        fix: String? = nil
    ) -> RunnerError {
        let lines = stderr.split(separator: "\n", omittingEmptySubsequences: true)
        let tail = lines.suffix(20).joined(separator: "\n")
        var problem = "\(command.executable) failed with \(status)"
        if !tail.isEmpty {
            problem += ":\n" + tail
        }
        return RunnerError(.commandFailed, input: command.description, problem: problem, fix: fix)
    }
}

/// Where a command's standard streams go.
public enum OutputMode: Sendable, Hashable {
    /// Capture into the result, keeping at most this many bytes of each stream.
    case capture(limit: Int)
    /// Pass through to this process's own stdout/stderr (live output, progress).
    case inherit
    /// Throw the output away.
    case discard

    /// Captures up to 1 MiB of each stream.
    public static let captured = OutputMode.capture(limit: 1 << 20)
}

/// Runs external commands. The real one spawns processes; tests inject a recording one.
public protocol CommandRunner: Sendable {
    /// Runs `command` to completion. A non-zero exit is a normal result; use
    /// ``CommandResult/checked(_:fix:)`` to require success. Throws only when the program
    /// cannot be started (``RunnerError/Code/commandFailed``). Cancelling the calling task
    /// tears the command down.
    func run(_ command: Command, input: [UInt8]?, output: OutputMode) async throws(RunnerError) -> CommandResult

    /// Starts `command` and returns at once with a handle to wait for it, signal it and read its
    /// output: a long-lived child (the GitHub runner under the supervisor, a guest's nspawn).
    /// Nothing ends it when the handle goes away. Throws only when the program cannot be started.
    func start(_ command: Command, options: StartOptions) throws(RunnerError) -> any ProcessHandle
}

extension CommandRunner {
    /// Runs `command` with captured output and no input.
    public func run(_ command: Command) async throws(RunnerError) -> CommandResult {
        try await run(command, input: nil, output: .captured)
    }

    /// Runs `command`, requires success and returns its captured stdout.
    @discardableResult
    public func output(_ command: Command, input: [UInt8]? = nil, fix: String? = nil) async throws(RunnerError)
        -> String
    {
        try await run(command, input: input, output: .captured).checked(command, fix: fix).standardOutput
    }

    /// Runs `command` with its output passed through, and requires success.
    public func stream(_ command: Command, fix: String? = nil) async throws(RunnerError) {
        try await run(command, input: nil, output: .inherit).checked(command, fix: fix)
    }
}
