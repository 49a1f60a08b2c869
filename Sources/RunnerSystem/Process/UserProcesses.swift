import CRunnerSystem
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Every process of one user, found in `/proc` and killed: what the supervisor does before each
/// registration and each runner launch, so nothing a job left behind (a `setsid` loop, a
/// daemon) can read the next registration token or JIT configuration from
/// `/proc/<pid>/environ` of `config.sh` or `run.sh`.
///
/// A process belongs to the user when its real or effective UID is the user's. Each is signalled
/// through a process descriptor opened before its owner is checked, so a PID recycled meanwhile
/// is never signalled. Zombies count as gone: they run nothing and their environment is empty.
public enum UserProcesses {
    /// The real and effective UIDs of `pid` (`Uid:` of `/proc/<pid>/status`) and whether it is
    /// a zombie; nil when it is gone.
    package static func identity(of pid: Int32, procRoot: String = "/proc") -> (
        real: UInt32, effective: UInt32, zombie: Bool
    )? {
        guard let bytes = ProcessTable.readSmall("\(procRoot)/\(pid)/status", limit: 8192) else { return nil }
        return parseStatus(String(decoding: bytes, as: UTF8.self))
    }

    /// Reads `Uid:` (real, effective, saved, fs) and `State:` from a `/proc/<pid>/status` text.
    package static func parseStatus(_ text: String) -> (real: UInt32, effective: UInt32, zombie: Bool)? {
        var uids: [UInt32] = []
        var zombie = false
        for line in text.split(separator: "\n") {
            if line.hasPrefix("Uid:") {
                uids = line.dropFirst(4).split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap {
                    UInt32($0)
                }
            } else if line.hasPrefix("State:") {
                let state = line.dropFirst(6).trimmingPrefix(while: { $0 == "\t" || $0 == " " })
                zombie = state.hasPrefix("Z") || state.hasPrefix("X")
            }
        }
        guard uids.count >= 2 else { return nil }
        return (uids[0], uids[1], zombie)
    }

    /// The live (non-zombie) processes whose real or effective UID is `uid`, other than this one.
    public static func live(uid: UInt32) -> [Int32] {
        let me = getpid()
        return ProcessTable.allPIDs().filter { pid in
            guard pid != me, let id = identity(of: pid) else { return false }
            return !id.zombie && (id.real == uid || id.effective == uid)
        }
    }

    /// SIGKILLs every process of `uid` until none is left, for at most `timeout` seconds.
    /// Returns how many were signalled. Throws when some survive the bound (a process stuck in
    /// uninterruptible sleep, `D` state), naming how many and which PIDs.
    ///
    /// Refuses UID 0 and this process's own UID: that would kill the host, or the agent.
    @discardableResult
    public static func killAll(uid: UInt32, user: String, timeout: Duration = .seconds(5)) async throws(RunnerError)
        -> Int
    {
        guard uid != 0, uid != getuid(), uid != geteuid() else {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_USER",
                problem: "is \(user) (UID \(uid)), whose processes cannot all be killed",
                fix: "run the runner as its own unprivileged user (the installer creates one)")
        }
        var signalled = Set<Int32>()
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            let remaining = live(uid: uid)
            if remaining.isEmpty { return signalled.count }
            if clock.now >= deadline {
                throw RunnerError(
                    .internal, input: user,
                    problem: "\(remaining.count) process(es) of the runner user survived SIGKILL for \(timeout) "
                        + "(PIDs \(remaining.prefix(10).map(String.init).joined(separator: " "))); registering now "
                        + "could hand them the registration token",
                    fix: "check those processes (ps -o pid,stat,wchan,cmd -u \(user)); a process in D state waits "
                        + "on a device or a file system: fix that, or reboot the host")
            }
            for pid in remaining where signal(pid, SIGKILL, uid: uid) {
                signalled.insert(pid)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Sends `sig` to `pid` through a process descriptor, if it still belongs to `uid`.
    package static func signal(_ pid: Int32, _ sig: Int32, uid: UInt32) -> Bool {
        let fd = runner_pidfd_open(pid)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // Checked after the descriptor is open: it names the process we check, or one that is gone.
        guard let id = identity(of: pid), id.real == uid || id.effective == uid else { return false }
        return runner_pidfd_send_signal(fd, sig) == 0
    }
}
