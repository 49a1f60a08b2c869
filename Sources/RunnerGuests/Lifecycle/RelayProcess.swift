import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A guest's step relay process (``GuestRelay`` is what runs in it), for one user: its socket
/// (`/run/runner/relay/<guest>.sock`, owned by ``uid``) and its start.
/// ``GuestManager/start(_:caller:relay:)`` starts it while the guest boots, records it, and ends
/// it with the guest.
public struct RelayProcess: Sendable, Hashable {
    /// The one user (besides root) who may connect.
    public var uid: uid_t
    /// The group that owns the socket.
    public var gid: gid_t

    public init(uid: uid_t, gid: gid_t) {
        self.uid = uid
        self.gid = gid
    }

    /// Opens the socket and starts `runner-agent relay` for guest `name`, the socket as its
    /// stdin; returns its PID and start time for the guest's record. The relay waits for a
    /// connection, and reads the guest's record only when a step comes.
    func spawn(guest name: String, layout: HostLayout, workOwner: (uid: UInt32, gid: UInt32)?)
        throws(RunnerError) -> (pid: Int32, startTime: UInt64?)
    {
        try FilePaths.createDirectory(layout.guestRelayDirectory, mode: 0o755)
        // An older /run/runner made by a 0700 parent creation must let the user through.
        chmod(layout.runtimeDirectory, 0o755)
        chmod(layout.guestRelayDirectory, 0o755)
        let listener = try UnixSocket.listen(path: layout.guestRelaySocket(name), owner: uid, group: gid)
        defer { close(listener) }
        // A daemon in a session of its own (it outlives its starter).
        let relay = try Spawner.spawn(
            Self.command(
                executable: Self.executable(), name: name, uid: uid, layoutRoot: layout.root, workOwner: workOwner),
            options: SpawnOptions(
                standardInput: .descriptor(listener), standardOutput: .devNull,
                standardError: .file(layout.guestLog(name)), grouping: .newSession))
        return (relay.pid, ProcessTable.startTime(of: relay.pid))
    }

    /// `runner-agent relay NAME --uid UID` with a fresh environment: no `SUDO_*` (the relay
    /// refuses a caller that came through sudo), the starter's layout root (`RUNNER_HOST_ROOT`:
    /// only a test layout is not `/`; through sudo it always is) and work owner
    /// (`RUNNER_WORK_OWNER`, through sudo the caller). The relay is not a `ci-nspawn-run`
    /// subcommand, so the sudoers rule cannot reach it.
    static func command(
        executable: String, name: String, uid: uid_t, layoutRoot: String, workOwner: (uid: UInt32, gid: UInt32)?
    ) -> Command {
        var command = Command(executable, ["relay", name, "--uid", "\(uid)"])
        command.clearsEnvironment = true
        var environment: [String: String?] = ["PATH": GuestDefaults.path]
        if layoutRoot != "/" { environment[HostRoot.variable] = layoutRoot }
        if let workOwner { environment["RUNNER_WORK_OWNER"] = "\(workOwner.uid):\(workOwner.gid)" }
        command.environment = environment
        return command
    }

    /// This executable (the relay is the same binary, `runner-agent relay`).
    static func executable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return CommandLine.arguments.first ?? "runner-agent" }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
