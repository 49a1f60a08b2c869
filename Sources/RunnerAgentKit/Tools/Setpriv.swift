import RunnerCore

/// `setpriv`, which runs a command as the unprivileged runner user.
public struct Setpriv: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "setpriv") {
        self.executable = executable
    }

    /// `setpriv --reuid=UID --regid=GID --init-groups -- COMMAND…`, keeping the command's
    /// environment and working directory. Numeric ids: a user's primary group need not share
    /// its name.
    public func asUser(uid: UInt32, gid: UInt32, _ command: Command) -> Command {
        Command(
            executable, ["--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--"] + command.argv,
            environment: command.environment, clearsEnvironment: command.clearsEnvironment,
            workingDirectory: command.workingDirectory)
    }
}
