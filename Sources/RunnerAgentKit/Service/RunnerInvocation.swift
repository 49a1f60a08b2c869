import RunnerCore

/// A command and the bytes its standard input carries: how a secret reaches `config.sh` and
/// `run.sh` without being on a command line or in any other process's environment.
public struct RunnerInvocation: Sendable, Hashable {
    public var command: Command
    /// One line holding the secret, or nil when the command takes none.
    public var standardInput: [UInt8]?

    public init(command: Command, standardInput: [UInt8]? = nil) {
        self.command = command
        self.standardInput = standardInput
    }
}
