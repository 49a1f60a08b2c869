import RunnerCore

/// `chown`, handing the runner's directories to the runner user.
public struct Chown: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "chown") {
        self.executable = executable
    }

    /// `chown -R --no-dereference UID:GID PATH`: links themselves change owner, never their
    /// targets.
    public func recursive(uid: UInt32, gid: UInt32, _ path: String) -> Command {
        Command(executable, ["-R", "--no-dereference", "\(uid):\(gid)", path])
    }
}
