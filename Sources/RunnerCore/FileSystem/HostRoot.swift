/// The one rule for which host root a `runner-agent` process works under.
///
/// Every command that touches host paths resolves its ``HostLayout`` here: the commands that
/// parse arguments through their `--root` option (`HostRootOptions` in `RunnerAgentKit`), the
/// hook and the privileged helper (`ci-nspawn-run`, which takes no `--root`) with no option.
///
/// 1. `--root PATH`, when given.
/// 2. Else `RUNNER_HOST_ROOT`, unless the process was called through sudo (`SUDO_UID` set):
///    the helper is reachable through sudo by the runner user, and a caller must not point it
///    at a config, image store or state tree of its own (a security boundary).
/// 3. Else `/`.
///
/// A root that is not an absolute path is an error, never a silent fall back to `/`: a test
/// that meant a temporary root must not write to the real host.
public enum HostRoot {
    /// The environment variable tests set to point every command at a temporary root.
    public static let variable = "RUNNER_HOST_ROOT"

    /// Whether the process was called through sudo (sudo sets `SUDO_UID`).
    public static func calledThroughSudo(environment: (String) -> String?) -> Bool {
        environment("SUDO_UID") != nil
    }

    /// The layout for `option` (the `--root` value, nil when not given) in `environment`.
    public static func layout(option: String?, environment: (String) -> String?) throws(RunnerError) -> HostLayout {
        if let option {
            return try layout(root: option, input: "--root")
        }
        if !calledThroughSudo(environment: environment), let root = environment(variable), !root.isEmpty {
            return try layout(root: root, input: variable)
        }
        return HostLayout()
    }

    private static func layout(root: String, input: String) throws(RunnerError) -> HostLayout {
        guard root.hasPrefix("/") else {
            throw RunnerError(
                .invalidInput, input: input, problem: "'\(root)' is not an absolute path",
                fix: "give the test root as an absolute path, or leave \(input) unset for /")
        }
        return HostLayout(root: root)
    }
}
