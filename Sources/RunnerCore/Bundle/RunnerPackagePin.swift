/// The GitHub runner (actions/runner) a release pins: its version and the sha256 of its Linux
/// tarball for the bundle's architecture. It travels in the bundle's `MANIFEST.json` (`runner`),
/// written by `runner-build bundle --runner-version X.Y.Z --runner-sha256 HEX` (`ci/release` takes
/// both from `ci/actions-runner.pin`); the installer uses it when `config.env` sets no
/// `RUNNER_VERSION`.
public struct RunnerPackagePin: Sendable, Hashable, Codable {
    /// The runner version, `X.Y.Z` without a leading `v` (`2.336.0`).
    public var version: String
    /// Lowercase hex sha256 of `actions-runner-linux-<arch>-<version>.tar.gz` for the bundle's
    /// architecture, when the release pins one.
    public var sha256: String?

    /// A pin; ``problem`` says whether it is well formed.
    public init(version: String, sha256: String?) {
        self.version = version
        self.sha256 = sha256?.lowercased()
    }

    /// Checks the form of `version` and `sha256`; the error names the flag or field given as `input`.
    public init(checking version: String, sha256: String?, input: String) throws(RunnerError) {
        self.init(version: version, sha256: sha256)
        if let problem {
            throw RunnerError(
                .invalidInput, input: input, problem: problem,
                fix: "a runner version X.Y.Z (e.g. 2.336.0) and the sha256 of its tarball (64 hex digits)")
        }
    }

    /// What is wrong with the pin, or nil: the version is `X.Y.Z` (digits), the sha256 64 hex digits.
    public var problem: String? {
        let parts = version.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (48...57).contains($0) } })
        else { return "runner version '\(version)' is not X.Y.Z (no leading v)" }
        if let sha256, !SHA256Digest.isValidHex(sha256) { return "runner sha256 '\(sha256)' is not 64 hex digits" }
        return nil
    }

    /// The runner's name for a bundle architecture, as in its tarball's name (`x64`, `arm64`).
    public static func runnerArch(_ arch: BundleArch) -> String {
        switch arch {
        case .x86_64: "x64"
        case .aarch64: "arm64"
        }
    }

    /// The pin file of a source tree (`ci/actions-runner.pin`), relative to its root.
    public static let pinFile = "ci/actions-runner.pin"

    /// Reads a pin file: `ACTIONS_RUNNER_VERSION=X.Y.Z` and `ACTIONS_RUNNER_SHA256_<arch>=HEX`
    /// (`<arch>` as `uname -m` prints it), in `config.env` syntax. Returns the pin for `arch`;
    /// its sha256 is nil when the file has none for `arch`.
    public static func parse(_ bytes: [UInt8], arch: BundleArch, source: String) throws(RunnerError)
        -> RunnerPackagePin
    {
        let file = EnvironmentFile.parse(bytes)
        if let problem = file.problems.first {
            throw RunnerError(
                .invalidInput, input: "\(source):\(problem.line)", problem: problem.message, fix: problem.fix)
        }
        let values = file.environment
        guard let version = values["ACTIONS_RUNNER_VERSION"] else {
            throw RunnerError(
                .invalidInput, input: source, problem: "sets no ACTIONS_RUNNER_VERSION",
                fix: "ACTIONS_RUNNER_VERSION=X.Y.Z, the GitHub runner the release pins")
        }
        return try RunnerPackagePin(
            checking: version, sha256: values["ACTIONS_RUNNER_SHA256_\(arch.rawValue)"], input: source)
    }
}
