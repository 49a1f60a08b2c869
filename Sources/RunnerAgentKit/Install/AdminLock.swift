import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// The lock `install`, `upgrade` and `rollback` hold while they change the host
/// (``RunnerCore/HostLayout/adminLock``): two of them at once would switch `current` and rewrite
/// host files under each other. A second one fails at once, naming the one that runs; the lock
/// goes with the process (an `flock(2)`, so a killed holder never leaves it behind).
public final class AdminLock: Sendable {
    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    /// Unlocked before the close: a child another thread is starting holds a copy of the
    /// descriptor until its exec, and the lock (an `flock` on the open file) would outlive the
    /// close until then.
    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Takes the lock for `operation` (`install`, `upgrade`, `rollback`), or throws
    /// ``RunnerError/Code/busy`` naming the process that holds it.
    public static func acquire(_ operation: String, layout: HostLayout) throws(RunnerError) -> AdminLock {
        let path = layout.adminLock
        try FilePaths.createDirectory(FilePaths.parent(of: path))
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RunnerError.posix("open", path, fix: "run it as root") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder =
                String(decoding: (try? FilePaths.read(path)) ?? [], as: UTF8.self)
                .split(separator: "\n").first.map(String.init) ?? "another process"
            close(fd)
            throw RunnerError(
                .busy, input: operation,
                problem: "cannot start: \(holder) is changing this host (\(path))",
                fix:
                    "wait for it to end (`systemctl status runner-install.service`, or the other command), then run it again"
            )
        }
        let text = Array("runner-agent \(operation) (PID \(getpid()))\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return AdminLock(fd: fd)
    }
}
