import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests

#if canImport(Glibc)
    import Glibc
#endif

/// What the hook needs from guests: the in-process ``GuestManager`` when it runs as root, the
/// privileged helper through sudo otherwise.
public protocol GuestOperations: Sendable {
    func start(_ request: GuestStartRequest) async throws(RunnerError) -> GuestInfo
    func exec(_ name: String, command: [String], environment: [String: String], workingDirectory: String?)
        async throws(RunnerError) -> ExitStatus
    func stop(_ name: String) async throws(RunnerError)
    /// Stops a job's guests at once (``GuestManager/stop(_:)-([String])``): they shut down
    /// together, and the job's network goes while they do.
    func stop(_ names: [String]) async throws(RunnerError)
    /// Runs a health check in a guest: its status and output, stopped after `timeout` seconds.
    func probe(_ name: String, command: [String], timeout: Double) async throws(RunnerError) -> CommandResult
    /// Removes stale guests and, with `owner`, every guest of that job; `network` says how much
    /// of the host's network state is swept too (``NetworkSweep``: `.bridges` before a job).
    func sweep(owner: Int32?, network: NetworkSweep) async
    /// The last `lines` lines of a guest's log (a no-init service's own output); empty when
    /// there is none or it cannot be read.
    func log(_ name: String, lines: Int) async -> String
}

extension GuestManager: GuestOperations {
    public func exec(_ name: String, command: [String], environment: [String: String], workingDirectory: String?)
        async throws(RunnerError) -> ExitStatus
    {
        try await exec(
            name, command: command, environment: environment, workingDirectory: workingDirectory, timeout: nil)
    }

    public func sweep(owner: Int32?, network: NetworkSweep) async {
        await gc(all: false, owner: owner, network: network)
    }
}
