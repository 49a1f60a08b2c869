/// What runs as a guest's PID 1, chosen from the image when the guest starts.
public enum GuestInit: String, Codable, Sendable, Hashable {
    /// The image's systemd (`systemd-nspawn --boot`): steps are transient units asked of it over
    /// its private bus.
    case systemd
    /// nspawn's stub init (`systemd-nspawn --as-pid2`), for an image without systemd: the guest's
    /// PID 2 is the service's main process (or, for a job container, a program that waits), and
    /// steps enter the guest's namespaces from the host side (``EnteredStep``).
    case stub
}

/// What a guest is for: its main process follows from it on the no-init path.
public enum GuestRole: String, Codable, Sendable, Hashable {
    /// The job container: its main process only waits (docker's hook runs `tail -f /dev/null`).
    case job
    /// A service: its main process is the image's `Entrypoint` + `Cmd` (or the workflow's).
    case service
}
