#if canImport(Glibc)
    import Glibc
#endif

/// Ending a process that holds no state worth a shutdown: SIGTERM, then SIGKILL after a grace.
package enum ProcessTermination {
    /// Sends SIGTERM to `pid` (when it is still the process that started at `startTime`), waits
    /// up to `grace` for it to go (reaping it when it is our child), then SIGKILLs it.
    package static func terminate(pid: Int32, startTime: UInt64?, grace: Duration = .seconds(2)) async {
        guard ProcessTable.isAlive(pid, startTime: startTime) else { return }
        kill(pid, SIGTERM)
        let end = ContinuousClock.now + grace
        while ContinuousClock.now < end {
            _ = ChildProcess.reap(pid)
            if !ProcessTable.isAlive(pid, startTime: startTime) { return }
            await MonotonicClock.pause(.milliseconds(5))
        }
        kill(pid, SIGKILL)
    }
}
