/// A child started by ``CommandRunner/start(_:options:)`` that runs while its starter goes on:
/// the real one is a spawned process, tests use a scripted one.
public protocol ProcessHandle: Sendable {
    /// The child's PID (with ``ProcessGrouping/newProcessGroup`` or ``ProcessGrouping/newSession``
    /// also its process group's ID).
    var pid: Int32 { get }

    /// Sends `signal` to the child alone; false when it is gone.
    @discardableResult
    func signal(_ signal: Int32) -> Bool

    /// Sends `signal` to the child's whole process group (only meaningful when it leads one).
    func signalGroup(_ signal: Int32)

    /// The exit status once the child has ended, without waiting; nil while it runs.
    func poll() -> ExitStatus?

    /// Waits for the child to end and returns its status, without holding a thread of the
    /// cooperative pool.
    func wait() async -> ExitStatus

    /// The output available now with ``StartOptions/Output/pipe`` (empty when none), without
    /// waiting.
    func readAvailableOutput() -> [UInt8]
}
