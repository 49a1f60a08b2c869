import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent guest stop NAME…`.
struct GuestStopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop guests and remove what they left; a guest already gone is fine.")

    @Argument(help: "Guest names.")
    var names: [String] = []

    func run() async throws {
        let manager = try AgentHost.manager()
        try await manager.stop(names)
    }
}
