import CRunnerSystem
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Connections to a guest's systemd manager over its private socket, made without running
/// anything from the guest and without following a path the guest controls on the host's side.
///
/// systemd takes a peer on `/run/systemd/private` only when it can see the peer's PID (so the
/// connect must come from inside the guest's PID namespace) and only when the peer's uid is 0
/// in the guest's user namespace. `runner_guest_connect` (C, `CRunnerSystem`) forks a helper
/// that joins the guest's PID namespace, chroots into the guest's root (so the socket path and
/// every symlink on it resolve inside the guest), takes the host ids of the guest's root, drops
/// every capability, connects and passes the socket back; nothing is exec'd. The socket is then
/// checked to be served by the guest's PID 1 before a byte is written.
package enum GuestBus {
    /// systemd's private socket, as the guest sees it.
    static let privateSocket = "/run/systemd/private"
    /// The bound on the connect helper (a failure costs milliseconds: its exit is noticed).
    static let connectTimeoutMilliseconds: Int32 = 5000

    /// A connection to the systemd of the guest whose PID 1 is `leader` (host PID), checked and
    /// authenticated. `guest` names the guest in errors.
    static func connect(leader: Int32, guest: String, path: String = privateSocket) throws(RunnerError) -> SystemdBus {
        let fd = try connectSocket(leader: leader, guest: guest, path: path)
        do {
            try checkPeer(fd, leader: leader, guest: guest, path: path)
        } catch {
            close(fd)
            throw error
        }
        // The guest's systemd sees the connecting credentials mapped into its user namespace:
        // root (0) either way.
        return try SystemdBus(connected: fd, uid: 0)
    }

    /// The raw connected socket (no peer check): ``connect(leader:guest:path:)`` is what callers use.
    static func connectSocket(leader: Int32, guest: String, path: String) throws(RunnerError) -> Int32 {
        guard leader > 1 else {
            throw RunnerError(
                .invalidInput, input: guest, problem: "has no init process recorded",
                fix: "the guest did not finish starting; re-run the job")
        }
        let (uid, gid) = try rootIDs(leader: leader, guest: guest)
        var step: Int32 = 0
        let fd = runner_guest_connect(leader, uid, gid, path, connectTimeoutMilliseconds, &step)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw RunnerError(
                .commandFailed, input: "\(guest) \(path)",
                problem: "could not connect to the guest's systemd (\(stepDescription(step)): \(reason))",
                fix: "the guest's systemd does not answer; check the guest (`ci-nspawn-run list`) and re-run the job")
        }
        return fd
    }

    /// Refuses a socket whose server is not the guest's PID 1 (`SO_PEERCRED`, read in the host's
    /// PID namespace: the host PID of whoever listens).
    static func checkPeer(_ fd: Int32, leader: Int32, guest: String, path: String) throws(RunnerError) {
        let peer = runner_peer_pid(fd)
        guard peer >= 0 else {
            throw RunnerError.posix("could not read the peer of", "\(guest) \(path)", fix: nil)
        }
        guard peer == leader else {
            throw RunnerError(
                .permission, input: "\(guest) \(path)",
                problem:
                    "is served by PID \(peer), not by the guest's init (PID \(leader)); the guest may have "
                    + "replaced its systemd socket",
                fix: "nothing is sent to it; stop the guest (`ci-nspawn-run stop \(guest)`) and re-run the job")
        }
    }

    /// The host uid and gid of the guest's root: what `/proc/LEADER/uid_map` and `gid_map` map
    /// to 0 (0 itself without a user namespace).
    static func rootIDs(leader: Int32, guest: String) throws(RunnerError) -> (uid_t, gid_t) {
        var ids: [UInt32] = []
        for file in ["uid_map", "gid_map"] {
            let path = "/proc/\(leader)/\(file)"
            guard let bytes = ProcessTable.readSmall(path, limit: 65536),
                let id = hostID(mappedToRoot: String(decoding: bytes, as: UTF8.self))
            else {
                throw RunnerError(
                    .notFound, input: path, problem: "maps nothing to root in guest \(guest)",
                    fix: "the guest is gone or has no root user; re-run the job")
            }
            ids.append(id)
        }
        return (ids[0], ids[1])
    }

    /// The host id mapped to id 0 by a `uid_map`/`gid_map` text (`INSIDE OUTSIDE COUNT` lines).
    static func hostID(mappedToRoot map: String) -> UInt32? {
        for line in map.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
            guard fields.count == 3, fields[2] > 0 else { continue }
            if fields[0] == 0 { return fields[1] }
        }
        return nil
    }

    static func stepDescription(_ step: Int32) -> String {
        switch UInt32(bitPattern: step) {
        case RUNNER_CONNECT_OPEN_NAMESPACE.rawValue: "opening the guest's PID namespace"
        case RUNNER_CONNECT_OPEN_ROOT.rawValue: "opening the guest's root"
        case RUNNER_CONNECT_SOCKETPAIR.rawValue: "socketpair"
        case RUNNER_CONNECT_FORK.rawValue, RUNNER_CONNECT_FORK_GUEST.rawValue: "fork"
        case RUNNER_CONNECT_SETNS.rawValue: "joining the guest's PID namespace"
        case RUNNER_CONNECT_CHROOT.rawValue: "entering the guest's root"
        case RUNNER_CONNECT_CREDENTIALS.rawValue: "taking the guest root's credentials"
        case RUNNER_CONNECT_SOCKET.rawValue: "socket"
        case RUNNER_CONNECT_CONNECT.rawValue: "connect"
        case RUNNER_CONNECT_SEND.rawValue, RUNNER_CONNECT_RECEIVE.rawValue: "passing the connection"
        case RUNNER_CONNECT_TIMEOUT.rawValue: "no answer in time"
        default: "the connect helper ended without an answer"
        }
    }
}
