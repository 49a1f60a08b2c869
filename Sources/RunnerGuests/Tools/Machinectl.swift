import RunnerCore

/// `machinectl`: guests registered with machined.
public enum Machinectl {
    /// `machinectl show NAME --property=Leader --value`.
    public static func leader(machine: String) -> Command {
        Command("machinectl", ["show", machine, "--property=Leader", "--value"])
    }

    /// `machinectl list --no-legend`.
    public static func list() -> Command {
        Command("machinectl", ["list", "--no-legend", "--no-pager"])
    }
}
