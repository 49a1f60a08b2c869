import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent guest list [--json]`.
struct GuestListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List guests.")

    @Flag(help: "Print JSON records.")
    var json = false

    func run() async throws {
        let manager = try AgentHost.manager()
        for record in manager.list() {
            if json {
                StandardOutput.write(String(decoding: try JSONEncoder().encode(record), as: UTF8.self) + "\n")
            } else {
                let stale = manager.isStale(record) ? " (stale)" : ""
                StandardOutput.write("\(record.name)\t\(record.image)\t\(record.status.rawValue)\(stale)\n")
            }
        }
    }
}
