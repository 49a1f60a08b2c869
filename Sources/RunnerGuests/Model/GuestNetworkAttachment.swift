import RunnerCore

/// A guest's place on its job's private network, recorded with the guest (``GuestRecord/network``).
public struct GuestNetworkAttachment: Codable, Sendable, Hashable {
    /// The job's network: 8 hex digits derived from the job's owner (``GuestNetworkNames/jobID(ownerPID:startTime:)``).
    public var id: String
    /// The job's bridge (the host end of every guest's veth is in it).
    public var bridge: String
    /// The job's /24 as its first three octets (`10.213.7`); the bridge is `.1`.
    public var subnet: String
    /// The guest's address (`10.213.7.2`…).
    public var address: String
    /// Ports published from the host to this guest (DNAT in the job's nftables table).
    public var ports: [PortMapping]

    public init(id: String, bridge: String, subnet: String, address: String, ports: [PortMapping] = []) {
        self.id = id
        self.bridge = bridge
        self.subnet = subnet
        self.address = address
        self.ports = ports
    }

    /// The bridge's address: the guests' default route.
    public var gateway: String { subnet + ".1" }
    /// The guest's address with the network's prefix length.
    public var cidr: String { address + "/24" }
}
