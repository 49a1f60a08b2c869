import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

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
