import RunnerCore
import RunnerImages

/// `systemd-nspawn`: the guest itself, and the doctor's one-off boot of an image.
public struct SystemdNspawn: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "systemd-nspawn") {
        self.executable = executable
    }

    /// Options of ``boot(_:)``: an ephemeral guest that runs until it is stopped.
    public struct BootOptions: Sendable, Hashable {
        /// The image's root file system (read-only under the overlay).
        public var directory: String
        /// The guest's name (`--machine=`).
        public var machine: String
        /// The guest's binds, in any order (``boot(_:)`` orders parents first).
        public var binds: [GuestBind] = []
        /// Variables for the guest's PID 1 (`--setenv=`); never secrets.
        public var setenv: [String: String] = [:]
        /// With machined: registered (`--keep-unit`); without it `--register=no --keep-unit` (run
        /// in the caller's cgroup).
        public var register: Bool = false
        /// The guest's user namespace: `--private-users=BASE:SIZE --private-users-ownership=off`
        /// (the tree's owners are already shifted by BASE; nspawn never chowns). nil: none.
        public var userNamespace: GuestUserNamespace?
        /// A private network: the guest's end of a veth pair (`host0`) whose host end nspawn adds
        /// to this bridge (`--network-bridge=`), and no resolv.conf of nspawn's
        /// (`--resolv-conf=off`: the runner binds its own). nil: the host's network.
        public var networkBridge: String?

        public init(directory: String, machine: String) {
            self.directory = directory
            self.machine = machine
        }
    }

    /// `systemd-nspawn --quiet [--register=no] --keep-unit --directory=DIR --machine=NAME --boot
    /// --volatile=overlay --notify-ready=yes --console=passive [--private-users=BASE:SIZE
    /// --private-users-ownership=off] [--network-bridge=BRIDGE --resolv-conf=off] [--setenv=K=V]…
    /// [--bind=…]…`, binds parents before children.
    public func boot(_ options: BootOptions) -> Command {
        var args = Self.guest(register: options.register, directory: options.directory, machine: options.machine)
        args += ["--boot", "--volatile=overlay", "--notify-ready=yes", "--console=passive"]
        args += Self.isolation(options.userNamespace, networkBridge: options.networkBridge)
        for (key, value) in options.setenv.sorted(by: { $0.key < $1.key }) {
            args.append("--setenv=\(key)=\(value)")
        }
        args += Self.ordered(options.binds).map(\.nspawnArgument)
        return Command(executable, args)
    }

    /// Options of ``container(_:)``: an ephemeral guest for an image without an init of its own.
    public struct ContainerOptions: Sendable, Hashable {
        /// The image's root file system (read-only under the overlay).
        public var directory: String
        /// The guest's name (`--machine=`).
        public var machine: String
        /// The guest's binds, in any order (parents are mounted first).
        public var binds: [GuestBind] = []
        /// With machined: registered (`--keep-unit`); without it `--register=no --keep-unit`.
        public var register: Bool = false
        /// The guest's user namespace, as for ``boot(_:)``.
        public var userNamespace: GuestUserNamespace?
        /// The guest's PID 2, run by nspawn's stub init inside the guest (the image's program,
        /// never a secret: a service's environment reaches it through a file, not the command line).
        public var command: [String]
        /// Its working directory in the guest (`--chdir=`); nil: `/`.
        public var workingDirectory: String?
        /// The guest user it runs as (`--user=`, resolved by nspawn in the guest); nil: root.
        public var user: String?
        /// A private network, as for ``boot(_:)`` (`--network-bridge=BRIDGE --resolv-conf=off`);
        /// nil: the host's network.
        public var networkBridge: String?

        public init(directory: String, machine: String, command: [String]) {
            self.directory = directory
            self.machine = machine
            self.command = command
        }
    }

    /// `systemd-nspawn --quiet [--register=no] --keep-unit --directory=DIR --machine=NAME
    /// --as-pid2 --volatile=overlay --console=read-only [--chdir=DIR] [--user=NAME] [--private-users=BASE:SIZE
    /// --private-users-ownership=off] [--network-bridge=BRIDGE --resolv-conf=off] [--bind=…]… -- COMMAND…`:
    /// nspawn's stub init is the
    /// guest's PID 1 (it reaps, and the guest ends when COMMAND does); COMMAND's output reaches
    /// nspawn's own output through the guest's console (a pseudo-terminal: no host descriptor
    /// enters the guest). Without `--boot`, nspawn reports READY=1 itself once COMMAND runs.
    public func container(_ options: ContainerOptions) -> Command {
        var args = Self.guest(register: options.register, directory: options.directory, machine: options.machine)
        args += ["--as-pid2", "--volatile=overlay", "--console=read-only"]
        if let workingDirectory = options.workingDirectory { args.append("--chdir=" + workingDirectory) }
        if let user = options.user { args.append("--user=" + user) }
        args += Self.isolation(options.userNamespace, networkBridge: options.networkBridge)
        args += Self.ordered(options.binds).map(\.nspawnArgument)
        return Command(executable, args + ["--"] + options.command)
    }

    /// `--quiet [--register=no] --keep-unit --directory=DIR --machine=NAME`: what every job guest
    /// starts with (registered with machined, or run in the caller's cgroup).
    static func guest(register: Bool, directory: String, machine: String) -> [String] {
        ["--quiet"] + (register ? [] : ["--register=no"]) + [
            "--keep-unit", "--directory=" + directory, "--machine=" + machine,
        ]
    }

    /// `[--private-users=BASE:SIZE --private-users-ownership=off] [--network-bridge=BRIDGE
    /// --resolv-conf=off]`: the guest's user namespace and its job network.
    static func isolation(_ userNamespace: GuestUserNamespace?, networkBridge: String?) -> [String] {
        var args: [String] = []
        if let userNamespace { args += privateUsers(userNamespace) }
        if let networkBridge { args += ["--network-bridge=" + networkBridge, "--resolv-conf=off"] }
        return args
    }

    /// Parents before children: nspawn mounts in the order given.
    static func ordered(_ binds: [GuestBind]) -> [GuestBind] {
        binds.enumerated().sorted { a, b in
            let da = a.element.target.split(separator: "/").count
            let db = b.element.target.split(separator: "/").count
            return da == db ? a.offset < b.offset : da < db
        }.map(\.element)
    }

    /// Options of ``probe(_:)``: boot an image once, straight to poweroff.
    public struct ProbeOptions: Sendable, Hashable {
        /// The image's root file system (untouched: the boot runs on an overlay).
        public var directory: String
        /// The range the image's owners are shifted to; nil: no user namespace.
        public var userNamespace: GuestUserNamespace?

        public init(directory: String, userNamespace: GuestUserNamespace? = nil) {
            self.directory = directory
            self.userNamespace = userNamespace
        }
    }

    /// `systemd-nspawn --quiet --register=no --keep-unit --volatile=overlay --directory=ROOTFS
    /// --boot [--private-users=BASE:SIZE --private-users-ownership=off] -- --unit=poweroff.target`:
    /// systemd boots as PID 1 (the base tree stays untouched under the overlay) straight to
    /// poweroff; exit 0 means the image boots.
    public func probe(_ options: ProbeOptions) -> Command {
        var args = [
            "--quiet", "--register=no", "--keep-unit", "--volatile=overlay", "--directory=\(options.directory)",
            "--boot",
        ]
        if let userNamespace = options.userNamespace {
            args += Self.privateUsers(userNamespace)
        }
        return Command(executable, args + ["--", "--unit=poweroff.target"])
    }

    /// `--private-users=BASE:SIZE --private-users-ownership=off`.
    static func privateUsers(_ userNamespace: GuestUserNamespace) -> [String] {
        ["--private-users=\(userNamespace.base):\(userNamespace.size)", "--private-users-ownership=off"]
    }
}
