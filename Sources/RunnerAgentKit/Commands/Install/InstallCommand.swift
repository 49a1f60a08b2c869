import ArgumentParser
import Logging
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent install`: the idempotent installer (what bootstrap.sh runs).
public struct InstallCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Turn this host into a runner host; every step converges, so it can be re-run after any failure.",
        discussion: """
            Steps: release, host-files, runner-user, runner-package, work-directory, images,
            sudoers, systemd, marker (written last). Each prints done, already done, or failed
            with the reason. Reads /etc/runner/config.env.
            """
    )

    @Option(help: "The release bundle to install (runner-bundle-<version>-linux-<arch>.tar.gz).")
    var bundle: String?

    @Option(help: "Install from a source checkout instead (bootstrap's git mode): its bin/runner-agent and host files.")
    var source: String?

    @Flag(help: "Print the plan: which steps are already done and which would run.")
    var dryRun = false

    @Option(help: "The config.env to read (default: /etc/runner/config.env under --root).")
    var config: String?

    @OptionGroup var host: HostRootOptions

    public init() {}

    public func validate() throws {
        if let bundle, bundle.isEmpty { throw ValidationError("--bundle needs a file") }
        if bundle != nil && source != nil { throw ValidationError("give --bundle or --source, not both") }
    }

    public func run() async throws {
        let logger = Logger(label: "runner.install")
        let layout = try host.layout()
        do {
            let loaded = try ConfigEnv.load(config, layout: layout, for: .install)
            let unpacker = try unpacker(loaded)
            let pinned = try RunnerPackagePin.forInstall(bundle: bundle, unpacker: unpacker, layout: layout)
            let settings = try InstallSettings(loaded, pinned: pinned)
            let installer = Installer(
                layout: layout, settings: settings, bundle: bundle,
                commandRunner: SystemCommandRunner(logger: logger), logger: logger, unpacker: unpacker)
            let lock = dryRun ? nil : try AdminLock.acquire("install", layout: layout)
            defer { withExtendedLifetime(lock) {} }
            let killAfter = ProcessEnvironment.value("RUNNER_INSTALL_KILL_AFTER")
            let runner = StepRunner(logger: logger, killAfter: killAfter) { StandardOutput.write($0 + "\n") }
            try await runner.run(installer.steps, dryRun: dryRun)
            if !dryRun { try await installer.startService() }
        } catch {
            StandardError.write("runner-agent: error: \(error)\n")
            throw ExitCode(ServiceExit(error) == .config ? 78 : 1)
        }
    }
}

extension InstallCommand {
    /// The bundle unpacker (pinned to RUNNER_BUNDLE_SHA256 when set), or the checkout release
    /// for `--source` (versioned from RUNNER_BOOTSTRAP_REPO_REF when it is a version).
    func unpacker(_ config: RunnerConfig) throws(RunnerError) -> any ReleaseUnpacker {
        guard let source else {
            return ManifestReleaseUnpacker(expectedSHA256: config.bundleSHA256)
        }
        let ref = config.bootstrapRepoRef ?? ""
        let version = try BundleVersion(BundleVersion.isValid(ref) ? ref : "v0.0-git")
        return CheckoutRelease(checkout: source, version: version)
    }
}
