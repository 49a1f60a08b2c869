import RunnerCore

/// `nsenter`: enter a process's namespaces (tests: a booted host guest). Never used to run a
/// job guest's binaries: those would run with the host's privileges.
public enum Nsenter {
    /// `nsenter --target=LEADER --all -- COMMAND…`.
    public static func enter(leader: Int32, _ command: Command) -> Command {
        var entered = Command("nsenter", ["--target=\(leader)", "--all", "--"] + command.argv)
        entered.environment = command.environment
        entered.clearsEnvironment = command.clearsEnvironment
        return entered
    }
}
