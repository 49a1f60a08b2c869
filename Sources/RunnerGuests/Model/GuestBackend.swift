import RunnerCore
import RunnerSystem

/// Which way guests are started and entered on this host.
public enum GuestBackend: String, Sendable, Codable, Hashable {
    /// systemd is PID 1 and machined is available: each guest is a host service registered with
    /// machined (its steps still go over its own systemd's bus).
    case machined
    /// No machined (a container or a host without systemd as PID 1): `--register=no
    /// --keep-unit`, leader PID from the notify socket.
    case direct

    /// Detects the backend: systemd as PID 1 (`/run/systemd/system`) and machined installed.
    public static func detect(layout: HostLayout = HostLayout()) -> GuestBackend {
        if let forced = ProcessEnvironment.value("RUNNER_GUEST_BACKEND"), let backend = GuestBackend(rawValue: forced) {
            return backend
        }
        let booted = FilePaths.exists(layout.path("/run/systemd/system"))
        let machined = ["/usr/lib/systemd/systemd-machined", "/lib/systemd/systemd-machined"].contains {
            FilePaths.exists(layout.path($0))
        }
        return booted && machined ? .machined : .direct
    }
}
