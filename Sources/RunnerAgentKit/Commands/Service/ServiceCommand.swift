import ArgumentParser
import Logging
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent service`: what `runner.service` runs (through runner-service.sh).
public struct ServiceCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Register and run the GitHub runner, following its exit codes (what runner.service runs).",
        discussion: """
            Loads config.env, obtains a registration (token, PAT, GitHub App or JIT configuration),
            configures the runner unattended with self-update disabled, and runs it as the runner
            user. Exits 0 when the runner stopped for good or on SIGTERM; 1, 5, 7 pass the runner's
            final exit codes on; 69/70 ask systemd to retry; 78 means the configuration is wrong.
            """
    )

    @Option(help: "The config.env to load (default: /etc/runner/config.env under --root).")
    var config: String?

    @OptionGroup var host: HostRootOptions

    @Option(help: ArgumentHelp("Seconds before relaunching on exit codes 2/3/4.", visibility: .hidden))
    var relaunchDelay: Double = 5

    @Option(help: ArgumentHelp("Seconds a running job may continue after SIGTERM.", visibility: .hidden))
    var jobGrace: Double = 240

    @Option(help: ArgumentHelp("Seconds between SIGINT to the runner and killing it.", visibility: .hidden))
    var stopGrace: Double = 30

    public init() {}

    public func validate() throws {
        guard relaunchDelay >= 0, jobGrace >= 0, stopGrace >= 0 else {
            throw ValidationError("time bounds must not be negative")
        }
    }

    public func run() async throws {
        let logger = Logger(label: "runner.service")
        let layout = try host.layout()
        var timing = ServiceTiming()
        timing.relaunchDelay = .milliseconds(Int(relaunchDelay * 1000))
        timing.jobGrace = .milliseconds(Int(jobGrace * 1000))
        timing.stopGrace = .milliseconds(Int(stopGrace * 1000))
        let exit: ServiceExit
        do {
            let loaded = try ConfigEnv.load(config, layout: layout, for: .service)
            let settings = try ServiceSettings(loaded, layout: layout)
            let supervisor = RunnerSupervisor(
                settings: settings, layout: layout,
                commandRunner: SystemCommandRunner(logger: logger), logger: logger, timing: timing)
            let signals = SignalForwarder { signal, _ in
                logger.notice("received signal \(signal); stopping the runner")
                supervisor.requestStop()
            }
            defer { signals.cancel() }
            exit = try await supervisor.run()
        } catch {
            logger.error("\(error)")
            exit = ServiceExit(error)
        }
        if exit != .stopped { throw ExitCode(exit.rawValue) }
    }
}
