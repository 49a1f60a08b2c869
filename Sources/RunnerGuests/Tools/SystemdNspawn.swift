import RunnerCore
import RunnerImages

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
