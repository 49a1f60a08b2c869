import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent hook`: what `container-hooks.sh` execs. Reads one JSON line from stdin.
public struct HookCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hook",
        abstract: "The runner's container hook: run job containers in ephemeral systemd-nspawn guests.",
        discussion: """
            The runner (ACTIONS_RUNNER_CONTAINER_HOOKS) writes one line of JSON to stdin: prepare_job, \
            run_script_step, run_container_step or cleanup_job. As root the guests are managed in \
            process; otherwise through `sudo -n ci-nspawn-run`.
            """
    )

    public init() {}

    public func run() async throws {
        let code = await Self.handle()
        if code != 0 { throw ExitCode(code) }
    }

    /// Handles one hook call and exits with its code from where it finished, without hopping
    /// back to the main actor first (the hook is on every step's path).
    public static func handleAndExit() async -> Never {
        Glibc.exit(await handle())
    }

    /// Handles one hook call from stdin and returns the exit code. The executable calls this
    /// directly for `runner-agent hook` (no argument parsing: the hook is on every step's path).
    public static func handle() async -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let stdin = readStandardInput()
        let privileged = geteuid() == 0
        let layout: HostLayout
        let helper: HelperGuests
        let settings: HookSettings
        do throws(RunnerError) {
            layout = try AgentHost.layout()
            helper = HelperGuests(helper: layout.guestHelper, layout: layout)
            if privileged {
                settings = try HookSettings.load(layout: layout)
            } else if (try? HookInput.decode(stdin))?.command == HookInput.Command.prepareJob.rawValue {
                // config.env is root's (0600, credentials): the helper reads it for us. Only
                // prepare_job needs the settings; the steps and cleanup go by the job's state.
                settings = try await helper.settings()
            } else {
                settings = HookSettings()
            }
        } catch {
            ContainerHook.reportError(error)
            return 1
        }
        let logger = Logger(label: "runner.hook")
        let policy = AgentHost.policy(layout: layout, settings: settings)
        let guests: any GuestOperations =
            privileged ? LocalGuests(manager: GuestManager(policy: policy, logger: logger)) : helper
        let owner = ProcessEnvironment.value("RUNNER_HOOK_OWNER_PID").flatMap(Int32.init) ?? getppid()
        let hook = ContainerHook(settings: settings, policy: policy, guests: guests, logger: logger, ownerPID: owner)
        return await hook.run(stdin: stdin)
    }
}

/// Guests managed in process, when the hook runs as root: each with a step relay, as the
/// helper starts for the runner user, so steps take the same path.
struct LocalGuests: GuestOperations {
    var manager: GuestManager

    func start(_ request: GuestStartRequest) async throws(RunnerError) -> GuestInfo {
        let info = try await manager.start(request)
        do {
            try GuestRelay(manager: manager, name: info.name, allowedUID: 0).launch(uid: 0, gid: 0)
        } catch {
            try? await manager.stop(info.name)
            throw error
        }
        return info
    }

    func exec(_ name: String, command: [String], environment: [String: String], workingDirectory: String?)
        async throws(RunnerError) -> ExitStatus
    {
        if let status = try GuestRelay.exec(
            layout: manager.layout, name: name, command: command, environment: environment,
            workingDirectory: workingDirectory)
        {
            return status
        }
        return try await manager.exec(
            name, command: command, environment: environment, workingDirectory: workingDirectory)
    }

    func stop(_ name: String) async throws(RunnerError) { try await manager.stop(name) }

    func probe(_ name: String, command: [String], timeout: Double) async throws(RunnerError) -> CommandResult {
        try await manager.probe(name, command: command, timeout: timeout)
    }

    func sweep(owner: Int32?) async { await manager.sweep(owner: owner) }
}

/// Guests through the privileged helper: `sudo -n ci-nspawn-run …` (requests and environments
/// travel on stdin, never on command lines).
struct HelperGuests: GuestOperations {
    var helper: String
    /// Where the guests' step relays listen.
    var layout: HostLayout
    var runner: any CommandRunner = SubprocessCommandRunner()

    func sudo(_ arguments: [String]) -> Command {
        Command("sudo", ["-n", "--", helper] + arguments)
    }

    /// `sudo -n ci-nspawn-run settings`: the hook's config.env keys, read by the helper.
    func settings() async throws(RunnerError) -> HookSettings {
        let command = sudo(["settings"])
        let output = try await runner.output(command, fix: "check the sudoers rule for \(helper)")
        do {
            return try JSONDecoder().decode(HookSettings.self, from: Data(output.utf8))
        } catch {
            throw RunnerError(.internal, input: command.description, problem: "answered something that is not JSON")
        }
    }

    func start(_ request: GuestStartRequest) async throws(RunnerError) -> GuestInfo {
        let command = sudo(["start", "--request-stdin"])
        let input: Data
        do { input = try JSONEncoder().encode(request) } catch {
            throw RunnerError(.internal, input: "start", problem: "could not encode the request", underlying: error)
        }
        let output = try await runner.output(command, input: Array(input), fix: "check the sudoers rule for \(helper)")
        do {
            return try JSONDecoder().decode(GuestInfo.self, from: Data(output.utf8))
        } catch {
            throw RunnerError(.internal, input: command.description, problem: "answered something that is not JSON")
        }
    }

    func exec(_ name: String, command: [String], environment: [String: String], workingDirectory: String?)
        async throws(RunnerError) -> ExitStatus
    {
        // The guest's step relay (started with it): no sudo, no second helper process.
        if let status = try GuestRelay.exec(
            layout: layout, name: name, command: command, environment: environment,
            workingDirectory: workingDirectory)
        {
            return status
        }
        var arguments = ["exec", name, "--env-stdin"]
        if let workingDirectory { arguments += ["--cwd", workingDirectory] }
        let step = sudo(arguments + ["--"] + command)
        let env: Data
        do { env = try JSONEncoder().encode(environment) } catch {
            throw RunnerError(.internal, input: name, problem: "could not encode the environment", underlying: error)
        }
        // sudo relays SIGINT/SIGTERM to the helper, which stops the step's unit.
        return try GuestManager.runForwardingSignals(step, stdin: .bytes(Array(env))) { child, signal in
            kill(child, signal)
        }
    }

    func stop(_ name: String) async throws(RunnerError) {
        try await runner.run(sudo(["stop", name])).checked(sudo(["stop", name]))
    }

    func probe(_ name: String, command: [String], timeout: Double) async throws(RunnerError) -> CommandResult {
        try await runner.run(sudo(["exec", name, "--timeout", "\(timeout)", "--"] + command))
    }

    func sweep(owner: Int32?) async {
        _ = try? await runner.run(sudo(["gc"] + (owner.map { ["--owner-pid", "\($0)"] } ?? [])))
    }
}
