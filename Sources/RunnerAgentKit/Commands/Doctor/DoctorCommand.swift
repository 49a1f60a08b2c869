import ArgumentParser
import Logging
import RunnerCore
import RunnerSystem

/// `runner-agent doctor`: what is wrong with this host, and how to fix it.
public struct DoctorCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this runner host: config, install, release, units, runner, images, privileges, nspawn.",
        discussion:
            "Prints one line per check (ok / problem / skipped) and how to fix each problem; exits 1 on any problem."
    )

    @Option(help: "The config.env to check (default: /etc/runner/config.env under --root).")
    var config: String?

    @Flag(help: "Skip booting the default image with systemd-nspawn.")
    var noBootCheck = false

    @OptionGroup var host: HostRootOptions

    public init() {}

    public func run() async throws {
        let doctor = Doctor(
            layout: try host.layout(), commandRunner: SystemCommandRunner(), config: config,
            bootCheck: !noBootCheck)
        let findings = await doctor.run()
        for finding in findings { StandardOutput.write(finding.rendered + "\n") }
        if findings.contains(where: { $0.status == .problem }) { throw ExitCode(1) }
    }
}
