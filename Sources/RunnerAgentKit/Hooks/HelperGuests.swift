import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Guests through the privileged helper: `sudo -n ci-nspawn-run …` (requests and environments
/// travel on stdin, never on command lines).
struct HelperGuests: GuestOperations {
    var helper: String
    /// Where the guests' step relays listen.
    var layout: HostLayout
    var runner: any CommandRunner = SystemCommandRunner()

    func sudo(_ arguments: [String]) -> Command {
        Sudo().nonInteractive(Command(helper, arguments))
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

    /// `sudo -n ci-nspawn-run settings --lookup-stdin`: the settings, and the content store's
    /// answers for `references` (pinned for `owner` until the job ends), in one helper call.
    /// An answered image that does not name a manifest digest is dropped (the hook asks again).
    func settings(lookingUp references: [String], owner: Int32?) async throws(RunnerError) -> SettingsLookupAnswer {
        let command = sudo(["settings", "--lookup-stdin"])
        let request = SettingsLookupRequest(references: references, ownerPID: owner)
        let input: Data
        do { input = try JSONEncoder().encode(request) } catch {
            throw RunnerError(.internal, input: "settings", problem: "could not encode the request", underlying: error)
        }
        let output = try await runner.output(command, input: Array(input), fix: "check the sudoers rule for \(helper)")
        var answer: SettingsLookupAnswer
        do {
            answer = try JSONDecoder().decode(SettingsLookupAnswer.self, from: Data(output.utf8))
        } catch {
            throw RunnerError(.internal, input: command.description, problem: "answered something that is not JSON")
        }
        answer.lookups = answer.lookups.filter { lookup in
            references.contains(lookup.reference)
                && lookup.image.map { GuestPolicy.registryTreeDigest($0.digest) != nil } ?? true
        }
        return answer
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
        if let status = try await GuestRelay.exec(
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
        // sudo relays SIGINT/SIGTERM to the helper, which stops the step's unit: sudo runs in a
        // process group of its own and gets the first signal from us, a second one kills it.
        let (forwarder, target) = SignalForwarder.toChild()
        defer { forwarder.cancel() }
        let child = try runner.start(
            step, options: StartOptions(input: .bytes(Array(env)), output: .inherit, grouping: .newProcessGroup))
        target.attach(child)
        let status = await child.wait()
        // A step that ended well after a signal still reports it (the last one received).
        if let signal = forwarder.received.last, status.isSuccess { return .signaled(signal) }
        return status
    }

    func stop(_ name: String) async throws(RunnerError) {
        try await stop([name])
    }

    /// One helper call for all of them (`ci-nspawn-run stop NAME…`).
    func stop(_ names: [String]) async throws(RunnerError) {
        guard !names.isEmpty else { return }
        try await runner.run(sudo(["stop"] + names)).checked(sudo(["stop"] + names))
    }

    func probe(_ name: String, command: [String], timeout: Double) async throws(RunnerError) -> CommandResult {
        try await runner.run(sudo(["exec", name, "--timeout", "\(timeout)", "--"] + command))
    }

    func log(_ name: String, lines: Int) async -> String {
        let command = sudo(["logs", name, "--lines", "\(lines)"])
        guard let result = try? await runner.run(command), result.status.isSuccess else { return "" }
        return result.standardOutput.trimmedWhitespace
    }

    func sweep(owner: Int32?, network: NetworkSweep) async {
        _ = try? await runner.run(sweepCommand(owner: owner, network: network))
    }

    /// `sudo -n ci-nspawn-run gc [--owner-pid PID] [--quick]` (`--quick`: ``NetworkSweep/bridges``).
    func sweepCommand(owner: Int32?, network: NetworkSweep) -> Command {
        sudo(["gc"] + (owner.map { ["--owner-pid", "\($0)"] } ?? []) + (network == .bridges ? ["--quick"] : []))
    }
}
