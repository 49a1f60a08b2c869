import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests

#if canImport(Glibc)
    import Glibc
#endif

/// Guests managed in process, when the hook runs as root: each with a step relay, as the
/// helper starts for the runner user, so steps take the same path.
struct LocalGuests: GuestOperations {
    var manager: GuestManager

    func start(_ request: GuestStartRequest) async throws(RunnerError) -> GuestInfo {
        try await manager.start(request, caller: .current, relay: RelayProcess(uid: 0, gid: 0))
    }

    func exec(_ name: String, command: [String], environment: [String: String], workingDirectory: String?)
        async throws(RunnerError) -> ExitStatus
    {
        if let status = try await GuestRelay.exec(
            layout: manager.layout, name: name, command: command, environment: environment,
            workingDirectory: workingDirectory)
        {
            return status
        }
        return try await manager.exec(
            name, command: command, environment: environment, workingDirectory: workingDirectory)
    }

    func stop(_ name: String) async throws(RunnerError) { try await manager.stopEndingJobs([name]) }

    func stop(_ names: [String]) async throws(RunnerError) { try await manager.stopEndingJobs(names) }

    func probe(_ name: String, command: [String], timeout: Double) async throws(RunnerError) -> CommandResult {
        try await manager.probe(name, command: command, timeout: timeout)
    }

    func sweep(owner: Int32?, network: NetworkSweep) async {
        _ = await manager.gcEndingJobs(all: false, owner: owner, network: network)
    }

    func log(_ name: String, lines: Int) async -> String { manager.log(name, lines: lines) }
}
