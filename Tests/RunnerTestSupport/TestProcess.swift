import RunnerCore
import RunnerSystem

/// Children the tests start and watch (a built `runner-agent service`, the fake GitHub API).
public enum TestProcess {
    /// Starts `command` with exactly `environment` (nothing inherited), stdin `/dev/null`, stdout
    /// and stderr on one pipe (``ChildProcess/readAvailableOutput()``) and a process group of
    /// its own: as the supervisor starts the runner.
    package static func start(_ command: Command, environment: [String: String]) throws(RunnerError) -> ChildProcess {
        var command = command
        command.environment = environment.mapValues { Optional($0) }
        command.clearsEnvironment = true
        return try Spawner.spawn(
            command,
            options: SpawnOptions(standardOutput: .pipe, standardError: .standardOutput, grouping: .newProcessGroup))
    }
}
