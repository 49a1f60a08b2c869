import RunnerCore

/// `systemd-run` on the host (machined backend): a guest as its own service. Steps, probes and
/// port proxies in a guest are units of the guest's systemd, started over its bus (``GuestBus``).
public struct SystemdRun: Sendable, Hashable {
    /// How long systemd waits for a stopping guest before it SIGKILLs what is left of its unit.
    public static let guestStopTimeoutSeconds = 10

    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "systemd-run") {
        self.executable = executable
    }

    /// Options of ``guestService(_:nspawn:)``.
    public struct GuestServiceOptions: Sendable, Hashable {
        /// The unit's name (`--unit=`): the guest's name.
        public var unit: String
        /// Bounds the boot (`TimeoutStartSec`): a guest not ready by then is killed and
        /// `systemd-run` fails.
        public var startTimeoutSeconds: Int = 60
        /// The guest's limits: `MemoryMax=`, `CPUQuota=` (CPUs × 100 %), `TasksMax=`.
        public var limits = GuestLimits()
        /// The slice the unit runs in (`Slice=`): its job's (``JobSlices/unit(job:)``), which
        /// carries the job's limits; nil: systemd's default (`system.slice`).
        public var slice: String?

        public init(
            unit: String, startTimeoutSeconds: Int = 60, limits: GuestLimits = GuestLimits(), slice: String? = nil
        ) {
            self.unit = unit
            self.startTimeoutSeconds = startTimeoutSeconds
            self.limits = limits
            self.slice = slice
        }
    }

    /// `systemd-run --unit=NAME --quiet --collect -p Delegate=yes -p Type=notify -p NotifyAccess=all
    /// -p KillMode=mixed -p TimeoutStartSec=N -p TimeoutStopSec=10 [-p Slice=S] [limits] --
    /// systemd-nspawn …`: a guest as its own service on a host with machined; returns once the
    /// guest is ready.
    ///
    /// `KillMode=mixed` (as systemd's own `systemd-nspawn@.service`): stopping the unit sends
    /// SIGTERM to nspawn alone, which halts the guest (SIGRTMIN+3 to its init). With the default
    /// `control-group`, systemd also sends SIGTERM to every process of the guest, and the guest's
    /// systemd takes SIGTERM as "re-execute": it re-executes (`--deserialize`) while nspawn's halt
    /// request arrives and the halt is lost; the guest then runs on and the stop hangs until
    /// `TimeoutStopSec`. Then SIGKILL goes to the whole unit, guest included.
    public func guestService(_ options: GuestServiceOptions, nspawn: Command) -> Command {
        var properties = options.slice.map { ["-p", "Slice=" + $0] } ?? []
        for assignment in options.limits.unitProperties { properties += ["-p", assignment] }
        return Command(
            executable,
            [
                "--unit=" + options.unit, "--quiet", "--collect", "-p", "Delegate=yes", "-p", "Type=notify",
                "-p", "NotifyAccess=all", "-p", "KillMode=mixed", "-p",
                "TimeoutStartSec=\(options.startTimeoutSeconds)",
                "-p", "TimeoutStopSec=\(Self.guestStopTimeoutSeconds)",
            ] + properties + ["--"] + nspawn.argv)
    }
}
