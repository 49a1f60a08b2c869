import RunnerCore

/// `machinectl`: guests registered with machined.
public struct Machinectl: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "machinectl") {
        self.executable = executable
    }

    /// `machinectl show NAME --property=Leader --value`: the guest's leader PID, one line.
    public func leader(machine: String) -> Command {
        Command(executable, ["show", machine, "--property=Leader", "--value"])
    }

    /// `machinectl list --no-legend --no-pager`: one line per registered machine.
    public func list() -> Command {
        Command(executable, ["list", "--no-legend", "--no-pager"])
    }
}
