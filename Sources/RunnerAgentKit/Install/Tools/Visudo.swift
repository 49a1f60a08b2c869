import RunnerCore

/// `visudo`, checking a sudoers file before it is installed.
public struct Visudo: Sendable {
    public var executable = "visudo"
    public init() {}

    /// `visudo --check --quiet --file FILE`.
    public func check(_ file: String) -> Command {
        Command(executable, ["--check", "--quiet", "--file", file])
    }
}
