import RunnerCore

/// `journalctl`, reading the end of a unit's log (the doctor quotes a failed install's error).
public struct Journalctl: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "journalctl") {
        self.executable = executable
    }

    /// `journalctl --no-pager --quiet --output=cat --lines=N --unit=UNIT`: the unit's last N
    /// messages, without metadata.
    public func lastLines(unit: String, count: Int) -> Command {
        Command(executable, ["--no-pager", "--quiet", "--output=cat", "--lines=\(count)", "--unit=\(unit)"])
    }
}
