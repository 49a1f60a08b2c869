import CRunnerSystem
import RunnerCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A child ``Spawner`` started: its PID, a process descriptor when the kernel has them, the read
/// ends of its output pipes, and its exit status once reaped.
///
/// Reaping happens in one place under a lock (``poll()``), so a non-blocking poll, a blocking
/// wait on a thread of its own and an `async` wait may run side by side and all see the status.
/// The blocking waits use `waitid(…, WNOWAIT)`, which waits without reaping. Nothing ends the
/// child when the handle goes away (a guest's nspawn outlives its starter); its descriptors
/// are closed then.
package final class ChildProcess: ProcessHandle {
    /// The child's PID; with a new process group or session also the group's ID.
    package let pid: Int32
    /// A process descriptor for the child (close-on-exec), or -1 when the kernel has none.
    package let pidfd: Int32
    /// The read end (non-blocking) of the stdout pipe, with ``SpawnOptions/Stream/pipe``.
    package let output: Int32?
    /// The read end (non-blocking) of the stderr pipe, with ``SpawnOptions/Stream/pipe``.
    package let errorOutput: Int32?
    /// The group or session it started in.
    package let grouping: ProcessGrouping
    /// The exit status, once reaped.
    private let status = Mutex<ExitStatus?>(nil)

    init(pid: Int32, pidfd: Int32, output: Int32?, errorOutput: Int32?, grouping: ProcessGrouping) {
        self.pid = pid
        self.pidfd = pidfd
        self.output = output
        self.errorOutput = errorOutput
        self.grouping = grouping
    }

    deinit {
        for fd in [output, errorOutput, pidfd >= 0 ? pidfd : nil] {
            if let fd { close(fd) }
        }
    }

    // MARK: signals

    /// Sends `signal` to the child alone, through its process descriptor when there is one (so
    /// never to a process that took over its PID); false when it is gone.
    @discardableResult
    package func signal(_ signal: Int32) -> Bool {
        if pidfd >= 0 { return runner_pidfd_send_signal(pidfd, signal) == 0 }
        return status.withLock { $0 == nil && kill(pid, signal) == 0 }
    }

    /// Sends `signal` to the process group the child leads (its stragglers too, after it ended).
    /// Does nothing for a child in our own group: that would signal us.
    package func signalGroup(_ signal: Int32) {
        guard grouping != .sameGroup else { return }
        kill(-pid, signal)
    }

    /// Sends `signal` to the child's group (or to the child, in our group) while it has not been
    /// reaped, so its PID, and with it the group's ID, is still the child's.
    package func signalWhileUnreaped(_ signal: Int32) {
        status.withLock { status in
            guard status == nil else { return }
            kill(grouping == .sameGroup ? pid : -pid, signal)
        }
    }

    // MARK: waiting

    /// The exit status once the child has ended, without waiting; nil while it runs. This is
    /// where the child is reaped.
    package func poll() -> ExitStatus? {
        status.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            let rc = waitpid(pid, &raw, WNOHANG)
            if rc == pid {
                status = Spawner.decode(raw)
            } else if rc < 0 && errno == ECHILD {
                // Reaped by someone else (a `waitpid(-1)` elsewhere): the status is lost.
                status = .exited(127)
            }
            return status
        }
    }

    /// Waits on this thread until the child ends, and returns its status. For synchronous code
    /// only (the relay, a test's helper thread): async code uses ``wait()``.
    package func waitBlocking() -> ExitStatus {
        while true {
            if let status = poll() { return status }
            var info = siginfo_t()
            let rc = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT)
            if rc < 0 && errno == EINTR { continue }
            // Ended (reaped by the next poll), or no longer ours to wait for (poll says so).
            if rc < 0 && errno != ECHILD { return poll() ?? .exited(127) }
        }
    }

    /// Waits until the child ends, on a thread of its own (never one of the cooperative pool's),
    /// and returns its status.
    package func wait() async -> ExitStatus {
        if let status = poll() { return status }
        return await DedicatedThread.run { self.waitBlocking() }
    }

    /// The status of `pid`, a child of ours known only by its PID (from a record), without
    /// waiting: reaps it when it has ended; `.exited(127)` when it is not our child (or was
    /// reaped); nil while it runs.
    package static func reap(_ pid: Int32) -> ExitStatus? {
        var raw: Int32 = 0
        let rc = waitpid(pid, &raw, WNOHANG)
        if rc == pid { return Spawner.decode(raw) }
        if rc < 0 && errno == ECHILD { return .exited(127) }
        return nil
    }

    // MARK: output

    /// What the stdout pipe holds now (empty when nothing, or no pipe), without waiting.
    package func readAvailableOutput() -> [UInt8] {
        guard let output else { return [] }
        var collected: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if n > 0 {
                collected.append(contentsOf: buffer[0..<n])
                continue
            }
            if n < 0 && errno == EINTR { continue }
            return collected
        }
    }

    /// Reads the stdout and stderr pipes on this thread until both end (the child and whatever
    /// it left holding them are gone), keeping the last `limit` bytes of each: never fails on
    /// volume. Then waits for the child. For a thread of its own (see ``SystemCommandRunner``).
    package func collectBlocking(limit: Int) -> (status: ExitStatus, output: [UInt8], errorOutput: [UInt8]) {
        var kept: [[UInt8]] = [[], []]
        var open = [output ?? -1, errorOutput ?? -1]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open.contains(where: { $0 >= 0 }) {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = Glibc.poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 { break }
            for index in 0..<2 where fds[index].fd >= 0 && fds[index].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fds[index].fd, $0.baseAddress, $0.count) }
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if n <= 0 {
                    open[index] = -1
                    continue
                }
                kept[index] += buffer[0..<n]
                if kept[index].count > 2 * limit { kept[index].removeFirst(kept[index].count - limit) }
            }
        }
        for index in 0..<2 where kept[index].count > limit {
            kept[index].removeFirst(kept[index].count - limit)
        }
        return (waitBlocking(), kept[0], kept[1])
    }
}
