import RunnerCore

/// The `runner-agent` of a release (`releases/<version>/bin/runner-agent`), run before the
/// release becomes `current` to show that it starts on this host.
struct AgentBinary: Sendable {
    /// The binary's path.
    var path: String

    /// `runner-agent --version`: exits 0 and prints the agent's version when the binary runs here.
    func version() -> Command { Command(path, ["--version"]) }
}
