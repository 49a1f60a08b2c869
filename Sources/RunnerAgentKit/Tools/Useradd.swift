import RunnerCore

/// `useradd`, creating the runner user.
public struct Useradd: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "useradd") {
        self.executable = executable
    }

    /// Options of ``systemUser(_:)``.
    public struct SystemUserOptions: Sendable, Hashable {
        /// The user's name (and its group's).
        public var name: String
        /// The home directory recorded for the user (not created: the installer makes it, so a
        /// run killed between the two converges to the same home).
        public var home: String
        /// `--prefix ROOT`: the host root when it is not `/` (tests and image builds).
        public var prefix: String?
        /// Join the existing group NAME (`--gid NAME`) instead of creating it (`--user-group`):
        /// a run killed inside useradd can leave the group without the user.
        public var existingGroup: Bool = false
        /// The login shell.
        public var shell: String = "/bin/bash"

        public init(name: String, home: String, prefix: String? = nil) {
            self.name = name
            self.home = home
            self.prefix = prefix
        }

        /// Options for a user of `layout`'s host: `prefix` is its root unless that is `/`.
        public init(name: String, home: String, layout: HostLayout) {
            self.init(name: name, home: home, prefix: layout.root == "/" ? nil : layout.root)
        }
    }

    /// `useradd [--prefix ROOT] --system (--user-group | --gid NAME) --no-create-home
    /// --home-dir HOME --shell SHELL NAME`.
    public func systemUser(_ options: SystemUserOptions) -> Command {
        var arguments: [String] = []
        if let prefix = options.prefix { arguments += ["--prefix", prefix] }
        arguments += ["--system"] + (options.existingGroup ? ["--gid", options.name] : ["--user-group"])
        arguments += ["--no-create-home", "--home-dir", options.home, "--shell", options.shell, options.name]
        return Command(executable, arguments)
    }
}
