import RunnerCore

/// `visudo`, checking a sudoers file before it is installed.
public struct Visudo: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "visudo") {
        self.executable = executable
    }

    /// `visudo --check --quiet --file FILE`: exit 0 when FILE parses.
    public func check(_ file: String) -> Command {
        Command(executable, ["--check", "--quiet", "--file", file])
    }
}
