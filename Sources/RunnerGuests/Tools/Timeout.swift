import RunnerCore

/// `timeout` (coreutils): a bound on a command that could wait forever.
public enum Timeout {
    /// `timeout --kill-after=5 SECONDS COMMAND…` (environment kept).
    public static func bounded(seconds: Int, _ command: Command) -> Command {
        var bounded = Command("timeout", ["--kill-after=5", "\(seconds)"] + command.argv)
        bounded.environment = command.environment
        bounded.clearsEnvironment = command.clearsEnvironment
        return bounded
    }
}
