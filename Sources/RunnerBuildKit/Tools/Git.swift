import RunnerCore

/// `git`, as typed commands.
public struct Git: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "git") {
        self.executable = executable
    }

    /// Options of `git rev-parse`.
    public struct RevParseOptions: Sendable, Hashable {
        /// The repository (`git -C DIR`).
        public var repository: String
        /// The revision to resolve.
        public var revision: String

        public init(repository: String, revision: String = "HEAD") {
            self.repository = repository
            self.revision = revision
        }
    }

    /// `git -C DIR rev-parse --verify --quiet REV^{commit}`: the full commit id.
    public func revParse(_ options: RevParseOptions) -> Command {
        Command(
            executable, ["-C", options.repository, "rev-parse", "--verify", "--quiet", options.revision + "^{commit}"])
    }
}
