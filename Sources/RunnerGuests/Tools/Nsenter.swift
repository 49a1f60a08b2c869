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
}
