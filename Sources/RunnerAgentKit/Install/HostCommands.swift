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

/// `visudo`, checking a sudoers file before it is installed.
public struct Visudo: Sendable {
    public var executable = "visudo"
    public init() {}

    /// `visudo --check --quiet --file FILE`.
    public func check(_ file: String) -> Command {
        Command(executable, ["--check", "--quiet", "--file", file])
    }
}

/// `systemctl`, on a host where systemd runs (never a guest's: units in a guest are started and
/// stopped over its bus, see ``GuestBus``).
public struct Systemctl: Sendable {
    public var executable = "systemctl"
    public init() {}

    public func daemonReload() -> Command { Command(executable, ["daemon-reload"]) }
    /// `systemctl start UNIT` (waits for the unit to be active).
    public func start(_ unit: String) -> Command { Command(executable, ["start", "--", unit]) }
    /// `systemctl start --no-block UNIT`.
    public func startNoBlock(_ unit: String) -> Command { Command(executable, ["start", "--no-block", unit]) }
    /// `systemctl is-enabled UNIT`.
    public func isEnabled(_ unit: String) -> Command { Command(executable, ["is-enabled", "--quiet", unit]) }
    /// `systemctl show --property=NeedDaemonReload --value UNIT`.
    public func needsReload(_ unit: String) -> Command {
        Command(executable, ["show", "--property=NeedDaemonReload", "--value", unit])
    }

    /// `systemctl show --property=P… -- UNIT`: one `P=value` line per property.
    public func show(_ unit: String, properties: [String]) -> Command {
        Command(executable, ["show"] + properties.map { "--property=" + $0 } + ["--", unit])
    }

    /// `systemctl stop [--no-block] -- UNIT`.
    public static func stop(unit: String, block: Bool = false) -> Command {
        Command("systemctl", ["stop"] + (block ? [] : ["--no-block"]) + ["--", unit])
    }

    /// `systemctl kill --signal=SIG -- UNIT`.
    public static func kill(unit: String, signal: String) -> Command {
        Command("systemctl", ["kill", "--signal=" + signal, "--", unit])
    }
}

/// `chown`, handing the runner's directories to the runner user.
public struct Chown: Sendable {
    public var executable = "chown"
    public init() {}

    /// `chown -R --no-dereference UID:GID PATH`.
    public func recursive(uid: UInt32, gid: UInt32, _ path: String) -> Command {
        Command(executable, ["-R", "--no-dereference", "\(uid):\(gid)", path])
    }
}
