import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Who owns a guest: every guest has a live owner, and when that process is gone (same PID,
/// same start time) `gc` removes the guest. An owner must be the caller's own process:
///
/// - through sudo (`SUDO_UID` not 0): a process whose real UID is `SUDO_UID` and that is an
///   ancestor of the helper (walking the parent chain from `getppid()`); without `--owner-pid`,
///   the nearest such ancestor that is not `sudo` itself. PID 1 and processes of other users
///   (root's included) are refused, so no caller can make a guest that never goes stale.
/// - as root: any live process other than PID 1; without one, the parent process.
public struct GuestOwner: Sendable, Hashable {
    public var pid: Int32
    public var startTime: UInt64

    /// The caller, as the helper sees it.
    public struct Caller: Sendable, Hashable {
        /// `SUDO_UID` when called through sudo by a user other than root, else nil.
        public var sudoUID: UInt32?
        /// The helper's parent process (where the ancestor walk starts).
        public var parent: Int32

        public init(sudoUID: UInt32?, parent: Int32) {
            self.sudoUID = sudoUID
            self.parent = parent
        }

        /// This process's caller.
        public static var current: Caller {
            let uid = ProcessEnvironment.value("SUDO_UID").flatMap(UInt32.init)
            return Caller(sudoUID: uid == 0 ? nil : uid, parent: getppid())
        }
    }

    /// The ancestors of (and including) `pid`, nearest first, up to (excluding) PID 1.
    static func ancestors(from pid: Int32, limit: Int = 128) -> [Int32] {
        var chain: [Int32] = []
        var current = pid
        while current > 1, chain.count < limit, !chain.contains(current) {
            chain.append(current)
            guard let parent = ProcessTable.parent(of: current) else { break }
            current = parent
        }
        return chain
    }

    static let fix = "pass --owner-pid with the PID of the job's process that starts the guest (the runner's worker)"

    /// Refuses an owner no caller may name (PID 1 never exits; 0 and below are no process):
    /// the check `start` makes before anything else.
    public static func checkRequested(_ requested: Int32?) throws(RunnerError) {
        if let requested, requested <= 1 {
            throw RunnerError(
                .invalidInput, input: "--owner-pid \(requested)",
                problem: "cannot own a guest (it never exits, so the guest would never be removed)", fix: fix)
        }
    }

    /// The owner for a guest `caller` starts, `requested` or the default; throws a clear error
    /// when the caller may not make it the owner.
    public static func resolve(requested: Int32?, caller: Caller) throws(RunnerError) -> GuestOwner {
        try checkRequested(requested)
        var pid: Int32
        if let uid = caller.sudoUID {
            let chain = ancestors(from: caller.parent)
            let own = chain.filter { UserProcesses.identity(of: $0)?.real == uid }
            if let requested {
                guard own.contains(requested) else {
                    let why =
                        ProcessTable.startTime(of: requested) == nil
                        ? "does not exist"
                        : chain.contains(requested)
                            ? "is not a process of UID \(uid) (the caller)" : "is not an ancestor of this helper"
                    throw RunnerError(
                        .permission, input: "--owner-pid \(requested)",
                        problem: "\(why): only the caller's own process "
                            + "that called the helper can own a guest", fix: fix)
                }
                pid = requested
            } else {
                guard let nearest = own.first(where: { ProcessTable.comm(of: $0) != "sudo" }) else {
                    throw RunnerError(
                        .permission, input: "--owner-pid",
                        problem: "is missing and no process of UID \(uid) called this helper", fix: fix)
                }
                pid = nearest
            }
        } else {
            pid = requested ?? caller.parent
            guard pid > 1 else {
                throw RunnerError(
                    .invalidInput, input: "--owner-pid", problem: "is missing and the caller is PID 1", fix: fix)
            }
        }
        guard let started = ProcessTable.startTime(of: pid) else {
            throw RunnerError(.invalidInput, input: "\(pid)", problem: "owner process does not exist", fix: fix)
        }
        return GuestOwner(pid: pid, startTime: started)
    }
}
