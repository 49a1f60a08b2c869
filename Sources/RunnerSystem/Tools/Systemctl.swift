import RunnerCore

/// `systemctl`, on a host where systemd runs (never a guest's: units in a guest are started and
/// stopped over its bus, see ``GuestBus``).
public struct Systemctl: Sendable {
    public var executable = "systemctl"
    public init() {}

    public func daemonReload() -> Command { Command(executable, ["daemon-reload"]) }
    /// `systemctl start UNIT` (waits for the unit to be active).
    public func start(_ unit: String) -> Command { Command(executable, ["start", "--", unit]) }
    /// `systemctl start --no-block UNIT`.
    public func startNoBlock(_ unit: String) -> Command { Command(executable, ["start", "--no-block", unit]) }
    /// `systemctl is-enabled UNIT`.
    public func isEnabled(_ unit: String) -> Command { Command(executable, ["is-enabled", "--quiet", unit]) }
    /// `systemctl show --property=NeedDaemonReload --value UNIT`.
    public func needsReload(_ unit: String) -> Command {
        Command(executable, ["show", "--property=NeedDaemonReload", "--value", unit])
    }

    /// `systemctl show --property=P… -- UNIT`: one `P=value` line per property.
    public func show(_ unit: String, properties: [String]) -> Command {
        Command(executable, ["show"] + properties.map { "--property=" + $0 } + ["--", unit])
    }

    /// `systemctl stop [--no-block] -- UNIT`.
    public static func stop(unit: String, block: Bool = false) -> Command {
        Command("systemctl", ["stop"] + (block ? [] : ["--no-block"]) + ["--", unit])
    }

    /// `systemctl kill --signal=SIG -- UNIT`.
    public static func kill(unit: String, signal: String) -> Command {
        Command("systemctl", ["kill", "--signal=" + signal, "--", unit])
    }
}
