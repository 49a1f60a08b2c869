import RunnerCore

/// One host directory bound into a guest.
public struct GuestBind: Sendable, Hashable, Codable {
    /// How the owners of a bind's files appear in a user-namespaced guest.
    public enum OwnerMapping: String, Sendable, Hashable, Codable {
        /// As they are: host UIDs outside the guest's range show as `nobody` in the guest.
        case none
        /// nspawn's `rootidmap` (systemd 252): an idmapped mount on which the owner of the bind
        /// source's top directory is guest root and every other UID is unmapped. What guest root
        /// writes there is owned on the host by that owner (the runner user), so a setuid bit it
        /// sets grants nothing on the host. Guest users other than root cannot create files there.
        ///
        /// It is a property of the mount, decided by ``GuestPolicy`` (never by the caller): a bind
        /// whose source is later replaced by a root-owned staging mount of the same directory
        /// (`open_tree` + `move_mount`) keeps it, since that mount's top directory still has the
        /// source's owner.
        case rootIDMap = "rootidmap"
    }

    /// The host path; nil for an anonymous volume (nspawn makes a temporary directory).
    public var source: String?
    /// The path inside the guest.
    public var target: String
    public var readOnly: Bool
    /// How owners map in a user-namespaced guest (``GuestPolicy/check(_:)`` sets it).
    public var ownerMapping: OwnerMapping = .none

    public init(source: String?, target: String, readOnly: Bool = false, ownerMapping: OwnerMapping = .none) {
        self.source = source
        self.target = target
        self.readOnly = readOnly
        self.ownerMapping = ownerMapping
    }

    enum CodingKeys: String, CodingKey { case source, target, readOnly, ownerMapping }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        source = try c.decodeIfPresent(String.self, forKey: .source)
        target = try c.decode(String.self, forKey: .target)
        readOnly = try c.decodeIfPresent(Bool.self, forKey: .readOnly) ?? false
        ownerMapping = try c.decodeIfPresent(OwnerMapping.self, forKey: .ownerMapping) ?? .none
    }

    /// The `--bind=`/`--bind-ro=` argument: `src:dst[:rootidmap]` (colons escaped as nspawn wants).
    var nspawnArgument: String {
        let flag = readOnly ? "--bind-ro=" : "--bind="
        var argument = flag + Self.escape(source ?? "") + ":" + Self.escape(target)
        if ownerMapping != .none, source != nil { argument += ":" + ownerMapping.rawValue }
        return argument
    }

    static func escape(_ path: String) -> String {
        path.replacing("\\", with: "\\\\").replacing(":", with: "\\:")
    }
}

/// `systemd-nspawn`: the guest itself.
public enum SystemdNspawn {
    /// Options for booting an ephemeral guest.
    public struct BootOptions: Sendable, Hashable {
        public var directory: String
        public var machine: String
        public var binds: [GuestBind] = []
        /// Variables for the guest's PID 1 (`--setenv=`); never secrets.
        public var setenv: [String: String] = [:]
        /// Without machined: `--register=no --keep-unit` (run in the caller's cgroup).
        public var register: Bool = false
        /// The guest's user namespace: `--private-users=BASE:SIZE --private-users-ownership=off`
        /// (the tree's owners are already shifted by BASE; nspawn never chowns). nil: none.
        public var userNamespace: GuestUserNamespace?
        public var executable: String = "systemd-nspawn"

        public init(directory: String, machine: String) {
            self.directory = directory
            self.machine = machine
        }
    }

    /// `systemd-nspawn --quiet -D DIR --machine=NAME -b --volatile=overlay --notify-ready=yes
    /// --console=passive [--private-users=BASE:SIZE --private-users-ownership=off]
    /// [--register=no --keep-unit] [--setenv=…] [--bind=…]`.
    public static func boot(_ options: BootOptions) -> Command {
        var args = ["--quiet"]
        if options.register {
            args.append("--keep-unit")
        } else {
            args += ["--register=no", "--keep-unit"]
        }
        args += [
            "--directory=" + options.directory,
            "--machine=" + options.machine,
            "--boot",
            "--volatile=overlay",
            "--notify-ready=yes",
            "--console=passive",
        ]
        if let userNamespace = options.userNamespace {
            args += [
                "--private-users=\(userNamespace.base):\(userNamespace.size)", "--private-users-ownership=off",
            ]
        }
        for key in options.setenv.keys.sorted() {
            args.append("--setenv=\(key)=\(options.setenv[key]!)")
        }
        // Parents before children: nspawn mounts in the order given.
        let ordered = options.binds.enumerated().sorted { a, b in
            let da = a.element.target.split(separator: "/").count
            let db = b.element.target.split(separator: "/").count
            return da == db ? a.offset < b.offset : da < db
        }
        args += ordered.map(\.element.nspawnArgument)
        return Command(options.executable, args)
    }
}

/// `systemd-run` on the host (machined backend): a guest as its own service. Steps, probes and
/// port proxies in a guest are units of the guest's systemd, started over its bus (``GuestBus``).
public enum SystemdRun {
    /// How long systemd waits for a stopping guest before it SIGKILLs what is left of its unit.
    public static let guestStopTimeoutSeconds = 10

    /// `systemd-run --unit=NAME -p Delegate=yes -p Type=notify -p KillMode=mixed
    /// -p TimeoutStopSec=10 -- systemd-nspawn …`: a guest as its own service on a host with
    /// machined; returns once the guest is ready.
    ///
    /// `KillMode=mixed` (as systemd's own `systemd-nspawn@.service`): stopping the unit sends
    /// SIGTERM to nspawn alone, which halts the guest (SIGRTMIN+3 to its init). With the default
    /// `control-group`, systemd also sends SIGTERM to every process of the guest, and the guest's
    /// systemd takes SIGTERM as "re-execute": it re-executes (`--deserialize`) while nspawn's halt
    /// request arrives and the halt is lost; the guest then runs on and the stop hangs until
    /// `TimeoutStopSec`. Then SIGKILL goes to the whole unit, guest included.
    /// `startTimeout` bounds the boot (`TimeoutStartSec`): a guest not ready by then is killed and
    /// `systemd-run` fails.
    public static func guestService(unit: String, nspawn: Command, startTimeout: Int = 60) -> Command {
        Command(
            "systemd-run",
            [
                "--unit=" + unit, "--quiet", "--collect", "-p", "Delegate=yes", "-p", "Type=notify",
                "-p", "NotifyAccess=all", "-p", "KillMode=mixed", "-p", "TimeoutStartSec=\(startTimeout)",
                "-p", "TimeoutStopSec=\(guestStopTimeoutSeconds)", "--",
            ] + nspawn.argv)
    }
}

/// `nsenter`: enter a process's namespaces (tests: a booted host guest). Never used to run a
/// job guest's binaries: those would run with the host's privileges.
public enum Nsenter {
    /// `nsenter --target=LEADER --all -- COMMAND…`.
    public static func enter(leader: Int32, _ command: Command) -> Command {
        var entered = Command("nsenter", ["--target=\(leader)", "--all", "--"] + command.argv)
        entered.environment = command.environment
        entered.clearsEnvironment = command.clearsEnvironment
        return entered
    }
}

/// `timeout` (coreutils): a bound on a command that could wait forever.
public enum Timeout {
    /// `timeout --kill-after=5 SECONDS COMMAND…` (environment kept).
    public static func bounded(seconds: Int, _ command: Command) -> Command {
        var bounded = Command("timeout", ["--kill-after=5", "\(seconds)"] + command.argv)
        bounded.environment = command.environment
        bounded.clearsEnvironment = command.clearsEnvironment
        return bounded
    }
}

/// `machinectl`: guests registered with machined.
public enum Machinectl {
    /// `machinectl show NAME --property=Leader --value`.
    public static func leader(machine: String) -> Command {
        Command("machinectl", ["show", machine, "--property=Leader", "--value"])
    }

    /// `machinectl list --no-legend`.
    public static func list() -> Command {
        Command("machinectl", ["list", "--no-legend", "--no-pager"])
    }
}

/// Which way guests are started and entered on this host.
public enum GuestBackend: String, Sendable, Codable, Hashable {
    /// systemd is PID 1 and machined is available: each guest is a host service registered with
    /// machined (its steps still go over its own systemd's bus).
    case machined
    /// No machined (a container or a host without systemd as PID 1): `--register=no
    /// --keep-unit`, leader PID from the notify socket.
    case direct

    /// Detects the backend: systemd as PID 1 (`/run/systemd/system`) and machined installed.
    public static func detect(layout: HostLayout = HostLayout()) -> GuestBackend {
        if let forced = ProcessEnvironment.value("RUNNER_GUEST_BACKEND"), let backend = GuestBackend(rawValue: forced) {
            return backend
        }
        let booted = FilePaths.exists(layout.path("/run/systemd/system"))
        let machined = ["/usr/lib/systemd/systemd-machined", "/lib/systemd/systemd-machined"].contains {
            FilePaths.exists(layout.path($0))
        }
        return booted && machined ? .machined : .direct
    }
}
