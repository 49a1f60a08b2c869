import Logging
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// One named step of `runner-agent install`: it checks the host and converges it.
public struct InstallStep: Sendable {
    /// A short stable name (`host-files`, `runner-user`, …), used in logs and fault injection.
    public let name: String
    /// What the step makes true, for `--dry-run`.
    public let summary: String
    /// Whether the host already is as the step wants it.
    public let isDone: @Sendable () async throws(RunnerError) -> Bool
    /// Makes it so. Must be safe to repeat after being killed at any point.
    public let apply: @Sendable () async throws(RunnerError) -> Void
    /// Why the step is not done, for the error when its check still fails after `apply`; nil:
    /// the step cannot say.
    public let problem: (@Sendable () throws(RunnerError) -> String?)?

    public init(
        _ name: String, _ summary: String,
        isDone: @escaping @Sendable () async throws(RunnerError) -> Bool,
        apply: @escaping @Sendable () async throws(RunnerError) -> Void,
        problem: (@Sendable () throws(RunnerError) -> String?)? = nil
    ) {
        self.name = name
        self.summary = summary
        self.isDone = isDone
        self.apply = apply
        self.problem = problem
    }
}

/// What happened to a step.
public enum StepOutcome: String, Sendable, Hashable {
    case done = "done"
    case alreadyDone = "already done"
    case wouldRun = "would run"
}

/// Runs steps in order, logging `done` / `already done` / `failed: reason` for each.
public struct StepRunner: Sendable {
    public var logger: Logger
    /// Prints one line per step (stdout).
    public var print: @Sendable (String) -> Void
    /// Fault injection for tests: SIGKILL this process right after the named step finished
    /// (`RUNNER_INSTALL_KILL_AFTER`).
    public var killAfter: String?

    public init(logger: Logger, killAfter: String? = nil, print: @escaping @Sendable (String) -> Void) {
        self.logger = logger
        self.killAfter = killAfter
        self.print = print
    }

    /// Runs `steps`; with `dryRun`, only checks and prints the plan.
    @discardableResult
    public func run(_ steps: [InstallStep], dryRun: Bool) async throws(RunnerError) -> [String: StepOutcome] {
        var outcomes: [String: StepOutcome] = [:]
        for (index, step) in steps.enumerated() {
            let label = "[\(index + 1)/\(steps.count)] \(step.name)"
            do throws(RunnerError) {
                if try await step.isDone() {
                    outcomes[step.name] = .alreadyDone
                    print("\(label): already done (\(step.summary))")
                } else if dryRun {
                    outcomes[step.name] = .wouldRun
                    print("\(label): would run: \(step.summary)")
                } else {
                    try await step.apply()
                    guard try await step.isDone() else {
                        if let reason = try step.problem?() {
                            throw RunnerError(
                                .commandFailed, input: step.name, problem: "ran but still: \(reason)",
                                fix: "check `journalctl -b -u runner-install.service`; if the cause is not there, "
                                    + "report this as a bug, with the log")
                        }
                        throw RunnerError(
                            .internal, input: step.name, problem: "ran but its check still fails",
                            fix: "report this as a bug, with the log")
                    }
                    outcomes[step.name] = .done
                    print("\(label): done (\(step.summary))")
                }
            } catch {
                print("\(label): failed: \(error.input): \(error.problem)")
                logger.error("install step failed", metadata: ["step": "\(step.name)"])
                throw error
            }
            if killAfter == step.name { kill(getpid(), SIGKILL) }
        }
        return outcomes
    }
}
