import RunnerCore

/// `/bin/sh`, the host's POSIX shell, for the few steps that must happen in the child between
/// its start and its `exec` (entering cgroups, reading a secret from stdin). Never given text
/// from a workflow: the scripts are constants, the operands are arguments.
public struct Shell: Sendable, Hashable {
    /// The shell (an absolute path: it runs before anything could set `PATH`).
    public var executable: String

    public init(executable: String = "/bin/sh") {
        self.executable = executable
    }

    /// `/bin/sh -c SCRIPT OPERAND… COMMAND…`: SCRIPT sees the operands as `$0`, `$1`, … followed
    /// by COMMAND's argv, and is expected to end in `exec "$@"` (after shifting the operands) or
    /// `exec "$0" "$@"` (no operands). The command's environment and working directory are kept.
    public func wrapping(_ script: String, operands: [String] = [], _ command: Command) -> Command {
        Command(
            executable, ["-c", script] + operands + command.argv, environment: command.environment,
            clearsEnvironment: command.clearsEnvironment, workingDirectory: command.workingDirectory)
    }
}
