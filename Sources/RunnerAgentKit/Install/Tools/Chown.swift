import RunnerCore

/// `chown`, handing the runner's directories to the runner user.
public struct Chown: Sendable {
    public var executable = "chown"
    public init() {}

    /// `chown -R --no-dereference UID:GID PATH`.
    public func recursive(uid: UInt32, gid: UInt32, _ path: String) -> Command {
        Command(executable, ["-R", "--no-dereference", "\(uid):\(gid)", path])
    }
}
