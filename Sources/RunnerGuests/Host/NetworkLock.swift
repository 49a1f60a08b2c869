import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive `flock` on a file (the guests' network lock), taken without blocking a thread
/// of the cooperative pool: tried, then retried after a pause. Released by ``release()`` (or
/// when the process ends).
struct NetworkLock: Sendable {
    let descriptor: Int32

    /// Takes the lock on `path` (created 0600), waiting up to `timeout` seconds.
    static func acquire(_ path: String, timeout: Double = 30) async throws(RunnerError) -> NetworkLock {
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RunnerError.posix("could not open the lock", path, fix: "run as root") }
        let end = MonotonicClock.now() + timeout
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, MonotonicClock.now() < end else {
                close(fd)
                throw RunnerError(
                    .timeout, input: path, problem: "another guest start held the network lock too long",
                    fix: "try again; `ci-nspawn-run gc` removes what a killed start left")
            }
            await MonotonicClock.pause(.milliseconds(10))
        }
        return NetworkLock(descriptor: fd)
    }

    /// Releases the lock.
    func release() {
        close(descriptor)
    }
}
