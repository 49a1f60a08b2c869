import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Where the hook's and the privileged helper's host paths hang: `/`, or `RUNNER_HOST_ROOT` for
/// tests (``HostRoot``, the rule every command follows; these take no `--root`). The variable
/// is ignored when called through sudo, so no caller can point the helper at its own image store.
enum AgentHost {
    static var calledThroughSudo: Bool { HostRoot.calledThroughSudo(environment: ProcessEnvironment.value) }

    static func layout() throws(RunnerError) -> HostLayout {
        try HostRoot.layout(option: nil, environment: ProcessEnvironment.value)
    }

    /// The JSON request a root-only helper command reads on stdin, SIGPIPE ignored from then on.
    /// Refused unless we are root (`command` names the command, `problem` why it needs root),
    /// or when stdin is not a `T` (`shape` shows what one looks like).
    static func rootRequest<T: Decodable>(_ type: T.Type, command: String, problem: String, shape: String)
        async throws(RunnerError) -> T
    {
        guard geteuid() == 0 else {
            throw RunnerError(
                .permission, input: command, problem: problem,
                fix: "run it through sudo (the runner user has a rule for it)")
        }
        signal(SIGPIPE, SIG_IGN)
        let bytes = await StandardInput.read()
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw RunnerError(
                .invalidInput, input: "stdin", problem: "is not \(shape)",
                fix: "send one JSON object of that shape on stdin (the container hook does)")
        }
    }

    /// The helper's policy: config.env, plus (tests, never through sudo) `RUNNER_WORK_OWNER=uid:gid`.
    static func policy(layout: HostLayout, settings: HookSettings) -> GuestPolicy {
        var policy = settings.guestPolicy(layout: layout)
        if calledThroughSudo, let uid = ProcessEnvironment.value("SUDO_UID").flatMap(UInt32.init),
            let gid = ProcessEnvironment.value("SUDO_GID").flatMap(UInt32.init)
        {
            policy.workOwner = (uid, gid)
        } else if let owner = ProcessEnvironment.value("RUNNER_WORK_OWNER") {
            let parts = owner.split(separator: ":").compactMap { UInt32($0) }
            if parts.count == 2 { policy.workOwner = (parts[0], parts[1]) }
        }
        return policy
    }

    static func manager() throws(RunnerError) -> GuestManager {
        guard geteuid() == 0 else {
            throw RunnerError(
                .permission, input: "ci-nspawn-run", problem: "guests can only be managed as root",
                fix: "run it through sudo (the runner user has a rule for it)")
        }
        signal(SIGPIPE, SIG_IGN)
        let layout = try layout()
        let settings = try HookSettings.load(layout: layout)
        var manager = GuestManager(
            policy: policy(layout: layout, settings: settings), logger: Logger(label: "runner.guest"))
        manager.settings = settings
        return manager
    }
}
