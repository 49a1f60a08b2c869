import RunnerCore

/// `env` (coreutils), entering a working directory before the program starts (posix_spawn's
/// chdir action is not in Glibc's Swift view).
public struct Env: Sendable, Hashable {
    /// The program (an absolute path).
    public var executable: String

    public init(executable: String = "/usr/bin/env") {
        self.executable = executable
    }

    /// `/usr/bin/env --chdir=DIR -- COMMAND…`. The result carries no environment: the spawner
    /// gives the child its environment itself.
    public func changingDirectory(_ directory: String, _ command: Command) -> Command {
        Command(executable, ["--chdir=\(directory)", "--"] + command.argv)
    }
}
