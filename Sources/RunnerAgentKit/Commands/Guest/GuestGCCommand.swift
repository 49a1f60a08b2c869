import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent guest gc [--all] [--owner-pid PID]`.
struct GuestGCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Stop and remove guests whose job is gone (with --all: every guest).")

    @Flag(help: "Remove every guest, not just stale ones.")
    var all = false

    @Option(help: "Also remove every guest of the job whose owner is this PID.")
    var ownerPid: Int32?

    func run() async throws {
        let manager = try AgentHost.manager()
        for name in await manager.gcEndingJobs(all: all, owner: ownerPid) {
            StandardOutput.write("removed \(name)\n")
        }
    }
}
