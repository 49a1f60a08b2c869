import RunnerCore

/// The GitHub runner package (`/opt/actions-runner`) and the commands the supervisor runs in
/// it. Every secret travels as an `ACTIONS_RUNNER_INPUT_*` variable, which the runner reads,
/// masks and removes from its own environment; argv holds none.
public struct RunnerPackage: Sendable, Hashable {
    /// The runner's root directory (holds `config.sh`, `run.sh`, `.runner`).
    public var directory: String

    public init(directory: String) { self.directory = directory }

    /// `.runner`: present once the runner is configured.
    public var settingsFile: String { directory + "/.runner" }
    public var configScript: String { directory + "/config.sh" }
    public var runScript: String { directory + "/run.sh" }

    /// Whether `config.sh` has configured this runner.
    public var isConfigured: Bool { FilePaths.exists(settingsFile) }

    /// Options of an unattended `config.sh` run.
    public struct ConfigureOptions: Sendable, Hashable {
        public var url: String
        public var name: String
        public var labels: [String] = []
        public var group: String?
        public var workDirectory: String
        public var ephemeral = false
        public var noDefaultLabels = false

        public init(url: String, name: String, workDirectory: String) {
            self.url = url
            self.name = name
            self.workDirectory = workDirectory
        }
    }

    /// `config.sh --unattended … --disableupdate --replace`, the registration token in
    /// `ACTIONS_RUNNER_INPUT_TOKEN`.
    public func configure(_ options: ConfigureOptions, token: Secret) -> Command {
        var arguments = [
            "--unattended", "--url", options.url, "--name", options.name, "--work", options.workDirectory,
            "--replace", "--disableupdate",
        ]
        if !options.labels.isEmpty { arguments += ["--labels", options.labels.joined(separator: ",")] }
        if let group = options.group, !group.isEmpty { arguments += ["--runnergroup", group] }
        if options.ephemeral { arguments.append("--ephemeral") }
        if options.noDefaultLabels { arguments.append("--no-default-labels") }
        return Command(
            configScript, arguments, environment: ["ACTIONS_RUNNER_INPUT_TOKEN": token.value],
            workingDirectory: directory)
    }

    /// `config.sh remove --local`: forgets the local registration without asking GitHub
    /// (for a registration GitHub already deleted, or before a fresh ephemeral one).
    public func removeLocal() -> Command {
        Command(configScript, ["remove", "--local"], workingDirectory: directory)
    }

    /// `run.sh`, with a JIT configuration in `ACTIONS_RUNNER_INPUT_JITCONFIG` when given.
    public func run(jitConfig: Secret?) -> Command {
        var environment: [String: String?] = [:]
        if let jitConfig { environment["ACTIONS_RUNNER_INPUT_JITCONFIG"] = jitConfig.value }
        return Command(runScript, [], environment: environment, workingDirectory: directory)
    }
}

/// `setpriv`, which runs a command as the unprivileged runner user.
public struct Setpriv: Sendable {
    public var executable = "setpriv"
    public init() {}

    /// `setpriv --reuid=UID --regid=GID --init-groups -- COMMAND…`, keeping the command's
    /// environment and working directory. Numeric ids: a user's primary group need not share
    /// its name.
    public func asUser(uid: UInt32, gid: UInt32, _ command: Command) -> Command {
        Command(
            executable, ["--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--"] + command.argv,
            environment: command.environment, clearsEnvironment: command.clearsEnvironment,
            workingDirectory: command.workingDirectory)
    }
}
