import RunnerCore

/// `systemd-run` on the host (machined backend): a guest as its own service. Steps, probes and
/// port proxies in a guest are units of the guest's systemd, started over its bus (``GuestBus``).
public enum SystemdRun {
    /// How long systemd waits for a stopping guest before it SIGKILLs what is left of its unit.
    public static let guestStopTimeoutSeconds = 10

    /// `systemd-run --unit=NAME -p Delegate=yes -p Type=notify -p KillMode=mixed
    /// -p TimeoutStopSec=10 -- systemd-nspawn …`: a guest as its own service on a host with
    /// machined; returns once the guest is ready.
    ///
    /// `KillMode=mixed` (as systemd's own `systemd-nspawn@.service`): stopping the unit sends
    /// SIGTERM to nspawn alone, which halts the guest (SIGRTMIN+3 to its init). With the default
    /// `control-group`, systemd also sends SIGTERM to every process of the guest, and the guest's
    /// systemd takes SIGTERM as "re-execute": it re-executes (`--deserialize`) while nspawn's halt
    /// request arrives and the halt is lost; the guest then runs on and the stop hangs until
    /// `TimeoutStopSec`. Then SIGKILL goes to the whole unit, guest included.
    /// `startTimeout` bounds the boot (`TimeoutStartSec`): a guest not ready by then is killed and
    /// `systemd-run` fails.
    public static func guestService(unit: String, nspawn: Command, startTimeout: Int = 60) -> Command {
        Command(
            "systemd-run",
            [
                "--unit=" + unit, "--quiet", "--collect", "-p", "Delegate=yes", "-p", "Type=notify",
                "-p", "NotifyAccess=all", "-p", "KillMode=mixed", "-p", "TimeoutStartSec=\(startTimeout)",
                "-p", "TimeoutStopSec=\(guestStopTimeoutSeconds)", "--",
            ] + nspawn.argv)
    }
}
