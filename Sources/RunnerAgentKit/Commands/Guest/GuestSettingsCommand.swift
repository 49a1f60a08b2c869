import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent guest settings`: the hook's config.env keys, as JSON.
struct GuestSettingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "Print the hook's settings from config.env as JSON (image aliases, mount roots; no secrets).",
        discussion: """
            The hook runs as the runner user and cannot read config.env (0600 root: it holds the \
            runner's credentials), so it asks the helper for the few keys it needs.
            """)

    func run() async throws {
        let manager = try AgentHost.manager()
        let json = try JSONEncoder().encode(manager.settings)
        StandardOutput.write(String(decoding: json, as: UTF8.self) + "\n")
    }
}
