import RunnerCore

/// `nsenter`: enter a process's namespaces (tests: a booted host guest). Never used to run a
/// job guest's binaries: those would run with the host's privileges.
public struct Nsenter: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "nsenter") {
        self.executable = executable
    }

    /// `nsenter --target=LEADER --all -- COMMAND…` (the command's environment kept).
    public func enter(leader: Int32, _ command: Command) -> Command {
        var entered = Command(executable, ["--target=\(leader)", "--all", "--"] + command.argv)
        entered.environment = command.environment
        entered.clearsEnvironment = command.clearsEnvironment
        return entered
    }

    /// `nsenter --target=LEADER --net -- COMMAND…`: the host's COMMAND in the guest's network
    /// namespace only (its mounts, users and PIDs stay the host's: nothing of the guest's file
    /// system runs).
    public func network(leader: Int32, _ command: Command) -> Command {
        var entered = Command(executable, ["--target=\(leader)", "--net", "--"] + command.argv)
        entered.environment = command.environment
        entered.clearsEnvironment = command.clearsEnvironment
        return entered
    }
}
