import RunnerCore

/// `ip` (iproute2): the bridges of the guests' private networks, and the guest side of their
/// links (run in a guest's network namespace through ``Nsenter/network(leader:_:)``: the host's
/// `ip`, never the guest's).
public struct IPRoute: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "ip") {
        self.executable = executable
    }

    /// `ip link add NAME type bridge`.
    public func addBridge(_ name: String) -> Command {
        Command(executable, ["link", "add", name, "type", "bridge"])
    }

    /// `ip address add CIDR dev DEVICE`.
    public func addAddress(_ cidr: String, device: String) -> Command {
        Command(executable, ["address", "add", cidr, "dev", device])
    }

    /// `ip link set DEVICE up`.
    public func setUp(_ device: String) -> Command {
        Command(executable, ["link", "set", device, "up"])
    }

    /// `ip route add default via GATEWAY dev DEVICE`.
    public func addDefaultRoute(via gateway: String, device: String) -> Command {
        Command(executable, ["route", "add", "default", "via", gateway, "dev", device])
    }

    /// `ip link delete NAME`.
    public func deleteLink(_ name: String) -> Command {
        Command(executable, ["link", "delete", name])
    }

    /// `ip -batch -`: the commands on stdin (one per line, without `ip`), in one process.
    public func batch() -> Command {
        Command(executable, ["-batch", "-"])
    }

    /// The `-batch` line of a command of this tool (its arguments).
    public static func batchLine(_ command: Command) -> String {
        command.arguments.joined(separator: " ") + "\n"
    }

    /// `ip -j link show type bridge`: the host's bridges, as JSON.
    public func listBridges() -> Command {
        Command(executable, ["-j", "link", "show", "type", "bridge"])
    }

    /// `ip -j address show`: every link of the host with its addresses, as JSON.
    public func listAddresses() -> Command {
        Command(executable, ["-j", "address", "show"])
    }
}
