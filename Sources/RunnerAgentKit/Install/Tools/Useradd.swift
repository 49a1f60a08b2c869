import RunnerCore

/// `useradd`, creating the runner user.
public struct Useradd: Sendable {
    public var executable = "useradd"
    public init() {}

    /// `useradd [--prefix ROOT] --system --user-group --no-create-home --home-dir HOME --shell /bin/bash NAME`
    /// (`--prefix` when the host root is not `/`: tests and image builds). The installer makes
    /// the home itself, so a run killed between the two converges to the same home.
    public func systemUser(_ name: String, home: String, layout: HostLayout, existingGroup: Bool = false) -> Command {
        var arguments: [String] = []
        if layout.root != "/" { arguments += ["--prefix", layout.root] }
        // A run killed inside useradd can leave the group without the user: then join it.
        arguments += ["--system"] + (existingGroup ? ["--gid", name] : ["--user-group"])
        arguments += ["--no-create-home", "--home-dir", home, "--shell", "/bin/bash", name]
        return Command(executable, arguments)
    }
}
