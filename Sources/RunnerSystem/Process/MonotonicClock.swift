import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// The monotonic clock.
package enum MonotonicClock {
    /// Monotonic seconds.
    package static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Sleeps for `duration` without holding a thread, and for the whole duration even when the
    /// calling task is cancelled: the pace of a bounded wait loop (a teardown, a readiness
    /// check), which ends by its own deadline.
    package static func pause(_ duration: Duration) async {
        if Task.isCancelled {
            // A task of its own: not cancelled, so its sleep lasts.
            await Task { try? await Task.sleep(for: duration) }.value
        } else {
            try? await Task.sleep(for: duration)
        }
    }

    /// ``pause(_:)`` for `seconds`.
    package static func pause(seconds: Double) async {
        await pause(.nanoseconds(Int64(max(0, seconds) * 1e9)))
    }
}
