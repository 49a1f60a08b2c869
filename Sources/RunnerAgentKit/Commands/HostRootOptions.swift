import ArgumentParser
import RunnerCore
import RunnerSystem

/// `--root PATH`: the host root a command works under, shared by every `runner-agent` command
/// that touches host paths (`install`, `upgrade`, `rollback`, `service`, `doctor`, `image …`, `config check`).
///
/// Default: `RUNNER_HOST_ROOT` (ignored when called through sudo), else `/`; the rule is
/// ``HostRoot``'s, which the hook and the privileged helper use too (they take no `--root`:
/// the helper is reachable through sudo with any arguments).
public struct HostRootOptions: ParsableArguments {
    @Option(
        name: .customLong("root"),
        help: ArgumentHelp(
            "The host root every host path hangs under (tests, image builds; default: $RUNNER_HOST_ROOT, else /).",
            valueName: "path"))
    public var root: String?

    public init() {}

    public func validate() throws {
        do {
            _ = try layout()
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The layout `--root` or `environment` names (``HostRoot/layout(option:environment:)``).
    public func layout(environment: (String) -> String? = ProcessEnvironment.value) throws(RunnerError) -> HostLayout {
        try HostRoot.layout(option: root, environment: environment)
    }
}
