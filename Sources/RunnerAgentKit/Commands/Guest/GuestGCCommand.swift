import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent guest gc [--all] [--owner-pid PID] [--quick]`.
struct GuestGCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Stop and remove guests whose job is gone (with --all: every guest).")

    @Flag(help: "Remove every guest, not just stale ones.")
    var all = false

    @Option(help: "Also remove every guest of the job whose owner is this PID.")
    var ownerPid: Int32?

    @Flag(
        help: """
            Sweep only the bridges of gone jobs and leave the filter table as it is (the hook's \
            sweep before a job, whose bridge applies the table again).
            """)
    var quick = false

    func run() async throws {
        let manager = try AgentHost.manager()
        for name in await manager.gcEndingJobs(all: all, owner: ownerPid, network: quick ? .bridges : .full) {
            StandardOutput.write("removed \(name)\n")
        }
    }
}
