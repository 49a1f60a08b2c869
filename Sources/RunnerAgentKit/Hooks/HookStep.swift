import RunnerCore
import RunnerGuests

/// A `run_script_step` as the command that runs in the job guest. The agent (`runner-agent
/// hook`) and the step relay (for `runner-hook`, which hands it the runner's JSON as it came)
/// both go through here, so a step runs the same whichever way it arrived.
enum HookStep {
    /// The job guest and the step: the entry point and its arguments, the environment merged as
    /// docker merges it (``StepEnvironment``), the working directory.
    static func request(_ input: HookInput) throws(RunnerError) -> (guest: String, step: GuestRelay.Request) {
        guard let state = input.state, let guest = state.guest else {
            throw RunnerError(
                .invalidInput, input: "state",
                problem: "run_script_step has no job guest in its state (prepare_job did not run or failed)",
                fix: "add a container: to the job, or check the \"Initialize containers\" step")
        }
        guard let entryPoint = input.args.entryPoint, !entryPoint.isEmpty else {
            throw RunnerError(.invalidInput, input: "args.entryPoint", problem: "is missing")
        }
        let environment = StepEnvironment.step(
            container: state.environment, step: input.args.environmentVariables, prependPath: input.args.prependPath)
        return (
            guest,
            GuestRelay.Request(
                command: [entryPoint] + input.args.entryPointArgs, environment: environment,
                workingDirectory: input.args.workingDirectory)
        )
    }

    /// The relay's reading of a hook call `runner-hook` passed on (``GuestRelay/hookSteps``):
    /// a `run_script_step` for the relay's own guest `name`, else a clear error.
    @Sendable static func relayRequest(_ json: [UInt8], name: String) throws(RunnerError) -> GuestRelay.Request {
        let input = try HookInput.decode(json)
        guard input.command == HookInput.Command.runScriptStep.rawValue else {
            throw RunnerError(
                .invalidInput, input: input.command, problem: "is not a step; the relay runs only run_script_step",
                fix: "runner-hook sends other calls to runner-agent hook")
        }
        let (guest, step) = try request(input)
        guard guest == name else {
            throw RunnerError(
                .invalidInput, input: "state.guest",
                problem: "names guest \(guest), but this relay serves \(name)",
                fix: "the job's state is not this guest's; re-run the job")
        }
        return step
    }
}
