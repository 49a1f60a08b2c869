import RunnerCore

/// `systemctl`, on a host where systemd runs (never a guest's: units in a guest are started and
/// stopped over its bus, see `GuestBus`).
public struct Systemctl: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "systemctl") {
        self.executable = executable
    }

    /// `systemctl daemon-reload`.
    public func daemonReload() -> Command { Command(executable, ["daemon-reload"]) }

    /// `systemctl start -- UNIT` (waits for the unit to be active).
    public func start(_ unit: String) -> Command { Command(executable, ["start", "--", unit]) }

    /// `systemctl start --job-mode=ignore-dependencies UNIT`: starts `unit` now, whatever it is
    /// ordered after. The installer starts its mount units so from inside
    /// `runner-install.service`, which they are ordered after (for later boots): a plain start
    /// would wait for the very service that waits for it.
    public func startIgnoringOrder(_ unit: String) -> Command {
        Command(executable, ["start", "--job-mode=ignore-dependencies", "--", unit])
    }

    /// `systemctl start --no-block UNIT` (queues the start job and returns).
    public func startNoBlock(_ unit: String) -> Command { Command(executable, ["start", "--no-block", unit]) }

    /// `systemctl is-enabled --quiet UNIT`: exit 0 when enabled.
    public func isEnabled(_ unit: String) -> Command { Command(executable, ["is-enabled", "--quiet", unit]) }

    /// `systemctl show --property=NeedDaemonReload --value UNIT`: `yes` or `no`.
    public func needsReload(_ unit: String) -> Command {
        Command(executable, ["show", "--property=NeedDaemonReload", "--value", unit])
    }

    /// `systemctl show --property=P… -- UNIT`: one `P=value` line per property.
    public func show(_ unit: String, properties: [String]) -> Command {
        Command(executable, ["show"] + properties.map { "--property=" + $0 } + ["--", unit])
    }

    /// `systemctl set-property --runtime -- UNIT P=V…`: sets `assignments` on `unit` until the
    /// next boot (drop-ins under `/run/systemd/system.control/UNIT.d/`). A slice needs no unit
    /// file: the properties apply when it is first started (a unit started with `Slice=UNIT`).
    public func setRuntimeProperties(_ unit: String, _ assignments: [String]) -> Command {
        Command(executable, ["set-property", "--runtime", "--", unit] + assignments)
    }

    /// Options of ``stop(_:_:)``.
    public struct StopOptions: Sendable, Hashable {
        /// Wait until the unit is stopped; otherwise `--no-block` (queue the stop and return).
        public var block: Bool = false

        public init(block: Bool = false) {
            self.block = block
        }
    }

    /// `systemctl stop [--no-block] -- UNIT`.
    public func stop(_ unit: String, _ options: StopOptions = StopOptions()) -> Command {
        Command(executable, ["stop"] + (options.block ? [] : ["--no-block"]) + ["--", unit])
    }

    /// `systemctl kill --signal=SIG -- UNIT`: the signal to every process of the unit.
    public func kill(_ unit: String, signal: String) -> Command {
        Command(executable, ["kill", "--signal=" + signal, "--", unit])
    }
}
