import RunnerCore

/// `sudo`: the unprivileged hook reaching the privileged helper, and the doctor asking what a
/// user may run.
public struct Sudo: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "sudo") {
        self.executable = executable
    }

    /// `sudo -n -- COMMAND…`: runs COMMAND as root, failing instead of asking for a password.
    /// The command's environment is not carried (sudo resets it): what it needs travels on stdin.
    public func nonInteractive(_ command: Command) -> Command {
        Command(executable, ["-n", "--"] + command.argv)
    }

    /// `sudo --non-interactive --list --other-user USER COMMAND`: exits 0 when USER may run
    /// COMMAND (on the real host only).
    public func may(_ user: String, run command: String) -> Command {
        Command(executable, ["--non-interactive", "--list", "--other-user", user, command])
    }
}
