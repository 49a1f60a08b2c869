import FoundationEssentials
import Logging
import RunnerCore
import RunnerSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How the agent's `service` ends; `runner.service` restarts on failure except for the codes in
/// its `RestartPreventExitStatus=` (1, 5, 7, 78).
public enum ServiceExit: Int32, Sendable {
    /// The runner stopped for good (exit 0), or the service was asked to stop.
    case stopped = 0
    /// The runner terminated with an error (its exit code 1): do not restart.
    case runnerTerminated = 1
    /// Another session for this runner exists (the runner's exit code 5): do not restart.
    case sessionConflict = 5
    /// The runner version is deprecated (the runner's exit code 7): restarting cannot help.
    case versionDeprecated = 7
    /// A GitHub or network failure that may pass: systemd restarts after `RestartSec=`.
    case unavailable = 69
    /// Anything else unexpected: systemd restarts after `RestartSec=`.
    case software = 70
    /// The configuration cannot work: do not restart until an administrator fixes it.
    case config = 78

    /// The exit for an error that ended the service.
    public init(_ error: RunnerError) {
        switch error.code {
        case .invalidConfig, .invalidInput, .permission, .unsupported, .notFound: self = .config
        case .network, .timeout: self = .unavailable
        default: self = .software
        }
    }
}

/// Time bounds of the supervisor.
public struct ServiceTiming: Sendable {
    /// Pause before relaunching after the runner's exit codes 2, 3, 4 (and 6).
    public var relaunchDelay: Duration = .seconds(5)
    /// After SIGTERM, how long a running job may go on before the runner is asked to stop.
    public var jobGrace: Duration = .seconds(240)
    /// After asking the runner to stop (SIGINT), how long before its process group is killed.
    public var stopGrace: Duration = .seconds(30)
    /// How often in a row a deleted registration is recovered before giving up.
    public var maxRegistrationRecoveries = 3

    public init() {}
}

/// `runner-agent service`: registers the GitHub runner, runs it as the runner user and follows
/// its exit-code contract (relaunch on 2/3/4, stop on 0/1/5, 7 = deprecated version), registers
/// afresh per job when ephemeral, recovers a registration GitHub deleted, and stops it
/// gracefully when asked.
public final class RunnerSupervisor: Sendable {
    public let settings: ServiceSettings
    public let layout: HostLayout
    public let package: RunnerPackage
    public let commandRunner: any CommandRunner
    public let logger: Logger
    public let timing: ServiceTiming
    /// Where the runner's output lines go (the journal, through stderr).
    public let output: @Sendable (String) -> Void
    /// The curl that reaches the GitHub API.
    public let curl: Curl

    private struct State {
        var stopRequested = false
        var registrationsMade = 0
        var runsStarted = 0
    }
    private let state = Mutex(State())

    public init(
        settings: ServiceSettings,
        layout: HostLayout,
        commandRunner: any CommandRunner,
        logger: Logger,
        timing: ServiceTiming = ServiceTiming(),
        curl: Curl = Curl(),
        output: @escaping @Sendable (String) -> Void = { StandardError.write($0) }
    ) {
        self.settings = settings
        self.layout = layout
        self.package = RunnerPackage(directory: layout.runnerDirectory)
        self.commandRunner = commandRunner
        self.logger = logger
        self.timing = timing
        self.curl = curl
        self.output = output
    }

    /// Asks the supervisor to stop: a running job gets ``ServiceTiming/jobGrace``, then the
    /// runner gets SIGINT and ``ServiceTiming/stopGrace``, then its process group is killed.
    public func requestStop() {
        state.withLock { $0.stopRequested = true }
    }

    var stopRequested: Bool { state.withLock { $0.stopRequested } }

    /// Registrations made (config.sh runs or JIT configurations used) since start.
    public var registrationsMade: Int { state.withLock { $0.registrationsMade } }

    /// Supervises until the runner stops for good or a stop is requested.
    public func run() async throws(RunnerError) -> ServiceExit {
        try checkPackage()
        var recoveries = 0
        var givenJITUsed = false
        var forceRegistration = false
        var jitUnsupported = false
        while !stopRequested {
            var jit: Secret?
            switch settings.registration {
            case .jitConfig(let given):
                if givenJITUsed {
                    logger.notice(
                        "the JIT configuration in config.env was used for its one job; give a new one to run another")
                    return .stopped
                }
                try await removeLocalRegistration()
                jit = given
                givenJITUsed = true
                note(registration: "given JIT configuration")
            case .api(let credential) where settings.ephemeral && !jitUnsupported:
                try await removeLocalRegistration()
                do throws(RunnerError) {
                    jit = try await api.jitConfig(
                        using: credential, name: settings.name, group: settings.group, labels: settings.labels,
                        workFolder: settings.workDirectory)
                    note(registration: "JIT configuration")
                } catch  where error.problem.contains("HTTP 404") {
                    // Older GitHub Enterprise Servers have no generate-jitconfig.
                    logger.warning(
                        "this GitHub has no JIT configurations; registering with config.sh --ephemeral instead")
                    jitUnsupported = true
                    try await configure()
                }
            case .token, .api:
                if forceRegistration || settings.ephemeral || !package.isConfigured {
                    try await removeLocalRegistration()
                    try await configure()
                } else {
                    logger.info("the runner is already configured; keeping its registration")
                }
            }
            forceRegistration = false
            if stopRequested { break }

            let outcome = try await runRunner(jitConfig: jit)
            if outcome.stoppedOnRequest {
                logger.info("the runner stopped as asked", metadata: ["status": "\(outcome.status)"])
                return .stopped
            }
            let code: Int32
            switch outcome.status {
            case .exited(let exited): code = exited
            case .signaled(let signal):
                logger.error("the runner was killed by signal \(signal)")
                return .software
            }
            switch code {
            case 0:
                recoveries = 0
                if settings.ephemeral || jit != nil {
                    logger.info("the ephemeral runner finished its job; registering afresh")
                    continue
                }
                logger.notice("the runner exited 0 and stopped for good")
                return .stopped
            case 1 where outcome.registrationDeleted:
                recoveries += 1
                if case .jitConfig = settings.registration {
                    throw RunnerError(
                        .invalidConfig, input: "RUNNER_JIT_CONFIG",
                        problem: "GitHub deleted the runner this JIT configuration registered",
                        fix: "generate a new JIT configuration, or configure a PAT or GitHub App instead")
                }
                guard recoveries <= timing.maxRegistrationRecoveries else {
                    throw RunnerError(
                        .network, input: settings.target.url,
                        problem: "GitHub deleted the runner's registration \(recoveries) times in a row",
                        fix: "check the runner in the \(settings.target) settings and the host clock")
                }
                logger.warning(
                    "GitHub deleted this runner's registration; removing the local configuration and registering again")
                forceRegistration = true
            case 1:
                logger.error("the runner terminated with an error (exit 1); not restarting it")
                return .runnerTerminated
            case 5:
                logger.error(
                    "another session for runner '\(settings.name)' exists (exit 5); stop the other runner of that name")
                return .sessionConflict
            case 7:
                logger.critical(
                    """
                    this runner version is deprecated and GitHub no longer sends it jobs (exit 7); \
                    install a release with a current runner (RUNNER_VERSION) and restart runner.service
                    """)
                return .versionDeprecated
            case 2, 3, 4, 6:
                logger.notice(
                    "the runner asked to be relaunched (exit \(code)); relaunching in \(timing.relaunchDelay)")
                try await pause(timing.relaunchDelay)
            default:
                logger.error("the runner exited with unexpected status \(code)")
                return .software
            }
        }
        return .stopped
    }

    // MARK: Registration

    var api: GitHubAPI {
        var api = GitHubAPI(target: settings.target, runner: commandRunner, curl: curl, logger: logger)
        api.environment = proxyEnvironment.mapValues { Optional($0) }
        return api
    }

    private func note(registration kind: String) {
        state.withLock { $0.registrationsMade += 1 }
        logger.info("registration", metadata: ["kind": "\(kind)", "runner": "\(settings.name)"])
    }

    private func configure() async throws(RunnerError) {
        let token: Secret
        switch settings.registration {
        case .token(let given): token = given
        case .api(let credential): token = try await api.registrationToken(using: credential)
        case .jitConfig: return
        }
        var options = RunnerPackage.ConfigureOptions(
            url: settings.target.url, name: settings.name, workDirectory: settings.workDirectory)
        options.labels = settings.labels
        options.group = settings.group
        options.ephemeral = settings.ephemeral
        options.noDefaultLabels = settings.noDefaultLabels
        let invocation = try package.configure(options, token: token)
        let command = asRunnerUser(invocation.command)
        try await killRunnerUserProcesses(before: "registering")
        logger.info("configuring the runner", metadata: ["command": "\(command)"])
        let result = try await commandRunner.run(command, input: invocation.standardInput, output: .captured)
        forward(result.standardOutput + result.standardError)
        try result.checked(
            command,
            fix: "check the registration token (it is valid for one hour) or the PAT/App, and RUNNER_GITHUB_URL")
        guard package.isConfigured else {
            throw RunnerError(
                .internal, input: package.configScript, problem: "succeeded but wrote no \(package.settingsFile)")
        }
        note(registration: "config.sh")
    }

    private func removeLocalRegistration() async throws(RunnerError) {
        guard package.isConfigured else { return }
        let command = asRunnerUser(package.removeLocal())
        logger.info("removing the local runner configuration", metadata: ["command": "\(command)"])
        let result = try await commandRunner.run(command, input: nil, output: .captured)
        forward(result.standardOutput + result.standardError)
        try result.checked(command)
    }

    // MARK: Running

    struct Outcome {
        var status: ExitStatus
        var stoppedOnRequest: Bool
        var registrationDeleted: Bool
    }

    private func runRunner(jitConfig: Secret?) async throws(RunnerError) -> Outcome {
        let invocation = try package.run(jitConfig: jitConfig)
        let command = asRunnerUser(invocation.command)
        var environment = runnerEnvironment
        for (key, value) in command.environment { environment[key] = value }
        try await killRunnerUserProcesses(before: "starting the runner")
        state.withLock { $0.runsStarted += 1 }
        logger.info("starting the runner", metadata: ["command": "\(command)"])
        // Its own process group (signalled as a whole), stdout and stderr on one pipe we read.
        var started = command
        started.environment = environment.mapValues { Optional($0) }
        started.clearsEnvironment = true
        let child = try commandRunner.start(
            started,
            options: StartOptions(
                input: invocation.standardInput.map { .bytes($0) } ?? .none, output: .pipe,
                grouping: .newProcessGroup))
        var scanner = OutputScanner()
        var stopPhase = StopPhase.running
        let clock = ContinuousClock()
        var deadline = clock.now
        while true {
            let bytes = child.readAvailableOutput()
            if !bytes.isEmpty {
                for line in scanner.feed(bytes) { output(line + "\n") }
            }
            if let status = child.poll() {
                for line in scanner.finish(child.readAvailableOutput()) { output(line + "\n") }
                // The group may hold stragglers (job processes); they go with their leader.
                child.signalGroup(SIGKILL)
                return Outcome(
                    status: status, stoppedOnRequest: stopPhase != .running,
                    registrationDeleted: scanner.registrationDeleted)
            }
            switch stopPhase {
            case .running where stopRequested:
                if scanner.jobRunning {
                    logger.notice("stop requested; letting the running job finish for up to \(timing.jobGrace)")
                    stopPhase = .waitingForJob
                    deadline = clock.now.advanced(by: timing.jobGrace)
                } else {
                    logger.notice("stop requested; asking the runner to stop (SIGINT)")
                    child.signalGroup(SIGINT)
                    stopPhase = .interrupted
                    deadline = clock.now.advanced(by: timing.stopGrace)
                }
            case .waitingForJob where !scanner.jobRunning || clock.now >= deadline:
                logger.notice("asking the runner to stop (SIGINT)")
                child.signalGroup(SIGINT)
                stopPhase = .interrupted
                deadline = clock.now.advanced(by: timing.stopGrace)
            case .interrupted where clock.now >= deadline:
                logger.warning("the runner did not stop within \(timing.stopGrace); killing its processes")
                child.signalGroup(SIGKILL)
                stopPhase = .killed
            default:
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    enum StopPhase { case running, waitingForJob, interrupted, killed }

    /// The environment of the runner's processes: built from scratch so nothing of the agent's
    /// own environment (which systemd may have filled from config.env) reaches jobs.
    var runnerEnvironment: [String: String] {
        let account = UserAccount.lookup(settings.user)
        var environment: [String: String] = [
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": account?.home ?? package.directory,
            "USER": settings.user,
            "LOGNAME": settings.user,
            "ACTIONS_RUNNER_CONTAINER_HOOKS": layout.containerHooksScript,
            "ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE": "1",
        ]
        if settings.requireJobContainer { environment["ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"] = "true" }
        if settings.user == "root" { environment["RUNNER_ALLOW_RUNASROOT"] = "1" }
        for (key, value) in proxyEnvironment { environment[key] = value }
        return environment
    }

    var proxyEnvironment: [String: String] {
        var environment: [String: String] = [:]
        for (key, value) in settings.proxies {
            environment[key] = value
            environment[key.lowercased()] = value
        }
        return environment
    }

    /// Kills every process of the runner user (what a job left: a `setsid` loop could read the
    /// next registration token from `/proc/<pid>/environ`). Only as root with an unprivileged
    /// runner user (running as the runner user itself, there is nothing to separate). Throws,
    /// and so fails the registration, when some survive.
    func killRunnerUserProcesses(before step: String) async throws(RunnerError) {
        guard geteuid() == 0, settings.user != "root", let account = UserAccount.lookup(settings.user),
            account.uid != 0
        else { return }
        let killed = try await UserProcesses.killAll(uid: account.uid, user: settings.user)
        if killed > 0 {
            logger.notice(
                "killed processes the runner user left behind",
                metadata: ["count": "\(killed)", "user": "\(settings.user)", "before": "\(step)"])
        }
    }

    /// `command` as the runner user: through `setpriv` when we are root and the user is not;
    /// always with the runner's from-scratch environment.
    func asRunnerUser(_ command: Command) -> Command {
        var command = command
        var environment: [String: String?] = runnerEnvironment.mapValues { Optional($0) }
        for (key, value) in command.environment { environment[key] = value }
        command.environment = environment
        command.clearsEnvironment = true
        if geteuid() == 0 && settings.user != "root", let account = UserAccount.lookup(settings.user) {
            return Setpriv().asUser(uid: account.uid, gid: account.gid, command)
        }
        return command
    }

    private func checkPackage() throws(RunnerError) {
        guard access(package.runScript, X_OK) == 0, access(package.configScript, X_OK) == 0 else {
            throw RunnerError(
                .notFound, input: package.directory, problem: "holds no GitHub runner (config.sh, run.sh)",
                fix: "run runner-agent install, which downloads and unpacks the pinned runner")
        }
        if geteuid() == 0 && settings.user != "root" && UserAccount.lookup(settings.user) == nil {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_USER", problem: "user '\(settings.user)' does not exist",
                fix: "run runner-agent install (it creates the user) or fix RUNNER_USER")
        }
    }

    private func pause(_ duration: Duration) async throws(RunnerError) {
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: duration)
        while clock.now < end && !stopRequested {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    private func forward(_ text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) { output(line + "\n") }
    }
}

/// Reads the runner's output line by line for the few facts the supervisor acts on.
struct OutputScanner {
    private var pending: [UInt8] = []
    /// The runner said its registration was deleted on the server.
    private(set) var registrationDeleted = false
    /// A job is running (between "Running job:" and "Job … completed with result:").
    private(set) var jobRunning = false

    mutating func feed(_ bytes: [UInt8]) -> [String] {
        pending.append(contentsOf: bytes)
        var lines: [String] = []
        while let newline = pending.firstIndex(of: 10) {
            let line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeSubrange(...newline)
            observe(line)
            lines.append(line)
        }
        return lines
    }

    mutating func finish(_ bytes: [UInt8]) -> [String] {
        var lines = feed(bytes)
        if !pending.isEmpty {
            let line = String(decoding: pending, as: UTF8.self)
            pending = []
            observe(line)
            lines.append(line)
        }
        return lines
    }

    private mutating func observe(_ line: String) {
        if line.contains("registration has been deleted from the server") { registrationDeleted = true }
        if line.contains("Running job:") { jobRunning = true }
        if line.contains("completed with result:") { jobRunning = false }
    }
}

/// An entry of the user database.
struct UserAccount {
    var name: String
    var uid: uid_t
    var gid: gid_t
    var home: String

    static func lookup(_ name: String) -> UserAccount? {
        guard let entry = getpwnam(name) else { return nil }
        return UserAccount(
            name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid,
            home: String(cString: entry.pointee.pw_dir))
    }
}
