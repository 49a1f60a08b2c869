/// How ``CommandRunner/start(_:options:)`` starts a long-lived child.
public struct StartOptions: Sendable, Hashable {
    /// What the child reads on its standard input.
    public enum Input: Sendable, Hashable {
        /// `/dev/null`.
        case none
        /// These bytes on a pipe, which is then closed.
        case bytes([UInt8])
        /// A descriptor of ours (close-on-exec or not), duplicated into the child.
        case descriptor(Int32)
    }

    /// Where the child's standard output and standard error go.
    public enum Output: Sendable, Hashable {
        /// Both on one pipe the caller reads through ``ProcessHandle/readAvailableOutput()``.
        case pipe
        /// Our own stdout and stderr.
        case inherit
        /// `/dev/null`.
        case discard
        /// Appended to this file (created with mode 0600).
        case file(String)
    }

    public var input: Input
    public var output: Output
    public var grouping: ProcessGrouping

    public init(input: Input = .none, output: Output = .inherit, grouping: ProcessGrouping = .sameGroup) {
        self.input = input
        self.output = output
        self.grouping = grouping
    }
}
