import RunnerCore
import RunnerSystem

/// The GitHub runner package (`/opt/actions-runner`) and the commands the supervisor runs in
/// it. Every secret travels as an `ACTIONS_RUNNER_INPUT_*` variable, which the runner reads,
/// masks and removes from its own environment; argv holds none.
///
/// The variable is set by a `/bin/sh -c` prelude that reads it from standard input (a pipe the
/// supervisor fills) and `exec`s the script: so it is in the environment of `config.sh`/`run.sh`
/// and what they start, and not in that of `setpriv` or of the shell before its `exec`.
/// What remains: the runner's own processes (`config.sh`'s .NET listener, `run.sh`'s listener
/// and the job's worker) have the variable in their initial environment, which
/// `/proc/<pid>/environ` shows to every process of the runner user. The supervisor kills
/// every process of that user before each registration and each launch
/// (``UserProcesses/killAll(uid:user:timeout:)``), so the only processes that can read it are
/// the registration itself and the job that runner was registered for.
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
    /// `ACTIONS_RUNNER_INPUT_TOKEN`, read from standard input (see ``readingSecret(_:_:_:)``).
    public func configure(_ options: ConfigureOptions, token: Secret) throws(RunnerError) -> RunnerInvocation {
        var arguments = [
            "--unattended", "--url", options.url, "--name", options.name, "--work", options.workDirectory,
            "--replace", "--disableupdate",
        ]
        if !options.labels.isEmpty { arguments += ["--labels", options.labels.joined(separator: ",")] }
        if let group = options.group, !group.isEmpty { arguments += ["--runnergroup", group] }
        if options.ephemeral { arguments.append("--ephemeral") }
        if options.noDefaultLabels { arguments.append("--no-default-labels") }
        return try Self.readingSecret(
            "ACTIONS_RUNNER_INPUT_TOKEN", token, Command(configScript, arguments, workingDirectory: directory))
    }

    /// `config.sh remove --local`: forgets the local registration without asking GitHub
    /// (for a registration GitHub already deleted, or before a fresh ephemeral one).
    public func removeLocal() -> Command {
        Command(configScript, ["remove", "--local"], workingDirectory: directory)
    }

    /// `run.sh`, with a JIT configuration in `ACTIONS_RUNNER_INPUT_JITCONFIG` (read from
    /// standard input) when given.
    public func run(jitConfig: Secret?) throws(RunnerError) -> RunnerInvocation {
        let command = Command(runScript, [], workingDirectory: directory)
        guard let jitConfig else { return RunnerInvocation(command: command) }
        return try Self.readingSecret("ACTIONS_RUNNER_INPUT_JITCONFIG", jitConfig, command)
    }

    /// The shell prelude of ``readingSecret(_:_:_:)``: `$0` is the program, `$@` its arguments.
    static func secretPrelude(_ variable: String) -> String {
        "IFS= read -r \(variable) && export \(variable) && exec \"$0\" \"$@\""
    }

    /// `/bin/sh -c 'IFS= read -r VAR && export VAR && exec "$0" "$@"' PROGRAM ARGS…` with
    /// `secret` and a newline as its standard input. A secret with a newline or NUL cannot be
    /// one line: refused (a registration token and a base64 JIT configuration have neither).
    static func readingSecret(_ variable: String, _ secret: Secret, _ command: Command) throws(RunnerError)
        -> RunnerInvocation
    {
        guard !secret.value.isEmpty,
            !secret.value.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" })
        else {
            throw RunnerError(
                .invalidConfig, input: variable, problem: "is empty or has a line break or NUL",
                fix: "give the registration token or JIT configuration as GitHub issued it (one line)")
        }
        let wrapped = Shell().wrapping(secretPrelude(variable), command)
        return RunnerInvocation(command: wrapped, standardInput: Array((secret.value + "\n").utf8))
    }
}
