import ArgumentParser
import Logging
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent upgrade --bundle FILE|URL --sha256 HEX`: moves the host to another release
/// between jobs, keeping the one it leaves for `runner-agent rollback`.
public struct UpgradeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Move this host to another release between jobs; the release it leaves is kept for rollback.",
        discussion: """
            While the old release runs: fetch the bundle (a URL into /var/cache/runner, a file as is), check \
            its sha256, unpack it beside the old one under /usr/local/lib/runner/releases/<version>, run its \
            agent once (--version) and download the GitHub runner it pins when that is a new one. Then drain \
            (systemctl stop runner.service: a running job may finish for up to 240 s), point previous at the \
            old release and current at the new one, install its units and scripts (the installer's \
            host-files step), start runner.service and wait until it is active and stays so. Any failure \
            leaves or puts the old release back running and exits non-zero. Releases other than current \
            and previous are removed after a success.
            """
    )

    @Option(help: ArgumentHelp("The release bundle: a file, or an http(s):// URL.", valueName: "file|url"))
    var bundle: String

    @Option(help: ArgumentHelp("The sha256 of the bundle file (from SHA256SUMS).", valueName: "hex"))
    var sha256: String

    @Option(help: "How long runner.service may take to come up, in seconds, before the old release returns.")
    var startTimeout = 90

    @Option(help: "The config.env to read (default: /etc/runner/config.env under --root).")
    var config: String?

    @OptionGroup var host: HostRootOptions

    public init() {}

    public func validate() throws {
        guard !bundle.isEmpty else { throw ValidationError("--bundle needs a file or a URL") }
        guard SHA256Digest.isValidHex(sha256) else { throw ValidationError("--sha256 must be 64 hex digits") }
        guard startTimeout > 0 else { throw ValidationError("--start-timeout must be positive") }
    }

    public func run() async throws {
        let logger = Logger(label: "runner.upgrade")
        do {
            var upgrader = try Upgrader.forCommand(layout: try host.layout(), config: config, logger: logger)
            upgrader.timing.startTimeout = .seconds(startTimeout)
            _ = try await upgrader.upgrade(bundle: bundle, sha256: sha256)
        } catch {
            RunnerCore.StandardError.write("runner-agent: error: \(error)\n")
            throw ExitCode.failure
        }
    }
}

extension Upgrader {
    /// The upgrader of `runner-agent upgrade` and `rollback`: the host of `layout`, its config.env,
    /// the real command runner, progress on stdout. Refuses to run unprivileged on a real host.
    static func forCommand(layout: HostLayout, config: String?, logger: Logger) throws(RunnerError) -> Upgrader {
        if layout.root == "/" && geteuid() != 0 {
            throw RunnerError(
                .permission, input: "runner-agent", problem: "moves the host between releases only as root",
                fix: "run it with sudo")
        }
        let loaded = try ConfigEnv.load(config, layout: layout, for: .install)
        return Upgrader(
            layout: layout, config: loaded, commandRunner: SystemCommandRunner(logger: logger), logger: logger
        ) { StandardOutput.write($0 + "\n") }
    }
}
