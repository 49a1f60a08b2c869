import RunnerCore

/// `timeout` (coreutils): a bound on a command that could wait forever.
public struct Timeout: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "timeout") {
        self.executable = executable
    }

    /// Options of ``bounded(_:_:)``.
    public struct BoundOptions: Sendable, Hashable {
        /// SIGTERM after this many seconds.
        public var seconds: Int
        /// SIGKILL this many seconds after the SIGTERM (`--kill-after=`).
        public var killAfterSeconds: Int = 5

        public init(seconds: Int, killAfterSeconds: Int = 5) {
            self.seconds = seconds
            self.killAfterSeconds = killAfterSeconds
        }
    }

    /// `timeout --kill-after=K SECONDS COMMAND…` (the command's environment kept). It exits 124
    /// when the bound ran out (137 after the kill), else with the command's status.
    public func bounded(_ options: BoundOptions, _ command: Command) -> Command {
        var bounded = Command(
            executable, ["--kill-after=\(options.killAfterSeconds)", "\(options.seconds)"] + command.argv)
        bounded.environment = command.environment
        bounded.clearsEnvironment = command.clearsEnvironment
        return bounded
    }
}
