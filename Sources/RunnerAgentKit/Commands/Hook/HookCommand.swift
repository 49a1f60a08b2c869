import ArgumentParser

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent hook`: what `runner-hook` (which `container-hooks.sh` execs) execs for every call
/// it does not send to a step relay itself. Reads one JSON line from stdin.
public struct HookCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hook",
        abstract: "The runner's container hook: run job containers in ephemeral systemd-nspawn guests.",
        discussion: """
            The runner (ACTIONS_RUNNER_CONTAINER_HOOKS) writes one line of JSON to stdin: prepare_job, \
            run_script_step, run_container_step or cleanup_job. As root the guests are managed in \
            process; otherwise through `sudo -n ci-nspawn-run`. On a host, runner-hook (beside this \
            binary) is what the runner runs: it sends steps to the job guest's relay and hands every \
            other call here.
            """
    )

    public init() {}

    public func run() async throws {
        let code = await HookProcess.handle()
        if code != 0 { throw ExitCode(code) }
    }

    /// Handles one hook call and exits with its code from where it finished, without hopping
    /// back to the main actor first. The executable calls this directly for `runner-agent hook`
    /// (no argument parsing: the hook is on every step's path).
    public static func handleAndExit() async -> Never {
        Glibc.exit(await HookProcess.handle())
    }
}
