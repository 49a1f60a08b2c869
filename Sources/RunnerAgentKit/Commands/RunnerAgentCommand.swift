import ArgumentParser
import RunnerCore

/// `runner-agent`: the host side. Installer, runner supervisor, container hook, guests.
public struct RunnerAgentCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "runner-agent",
        abstract: "Install and run one GitHub Actions runner on this host, with nspawn job containers.",
        version: RunnerVersion.current,
        subcommands: [
            InstallCommand.self,
            UpgradeCommand.self,
            RollbackCommand.self,
            ServiceCommand.self,
            HookCommand.self,
            GuestCommand.self,
            ImageCommand.self,
            AgentBundleCommand.self,
            AgentConfigCommand.self,
            DoctorCommand.self,
            AgentArchiveCommand.self,
            RelayCommand.self,
        ]
    )

    public init() {}
}
