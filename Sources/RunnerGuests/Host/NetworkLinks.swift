import RunnerCore
import RunnerSystem

/// A network of a link: an IPv4 address (host byte order) and its prefix length.
package struct IPv4Network: Sendable, Hashable {
    package var address: UInt32
    package var prefix: Int

    package init(address: UInt32, prefix: Int) {
        self.address = address
        self.prefix = prefix
    }
}

/// A link of the host: its name, kind (`bridge`, `veth`; nil for `lo` or a NIC) and IPv4
/// networks.
package struct HostLink: Sendable, Hashable {
    package var name: String
    package var kind: String?
    package var networks: [IPv4Network]

    package init(name: String, kind: String? = nil, networks: [IPv4Network] = []) {
        self.name = name
        self.kind = kind
        self.networks = networks
    }
}

/// The kernel's links, addresses and routes that job networks read and change: the host's
/// links (the sweep's bridges, the /24s already taken), a job's bridge, a guest's end of its
/// link; and the nftables ruleset's generation, which tells whether any table changed.
/// ``KernelNetworkLinks`` does it in process (netlink); unit tests record the calls.
package protocol NetworkLinks: Sendable {
    /// The nftables ruleset's generation (``KernelNetlink/nftablesGeneration()``); nil when it
    /// cannot be read.
    func rulesetGeneration() async -> UInt32?
    /// Every link of the host, with its kind and IPv4 networks.
    func hostLinks() async throws(RunnerError) -> [HostLink]
    /// Creates bridge `name`, with `gateway` on it, and sets it up. Fails when a link of that
    /// name exists.
    func addBridge(_ name: String, gateway: IPv4Network) async throws(RunnerError)
    /// Deletes link `name`; false when there was none (or it could not be deleted).
    @discardableResult
    func deleteLink(_ name: String) async -> Bool
    /// In the network namespace of process `leader` (a guest's): `address` on `device`, the
    /// device up, and the default route through `gateway`. Nothing of the guest's runs.
    func configureGuest(leader: Int32, device: String, address: IPv4Network, gateway: UInt32)
        async throws(RunnerError)
}

/// ``NetworkLinks`` through rtnetlink (``KernelNetlink``): no `ip` to start, each call on a
/// thread of its own (the kernel may make it wait for its network lock).
package struct KernelNetworkLinks: NetworkLinks {
    package init() {}

    package func rulesetGeneration() async -> UInt32? {
        await DedicatedThread.run { try? KernelNetlink.openNetfilter().nftablesGeneration() }
    }

    package func hostLinks() async throws(RunnerError) -> [HostLink] {
        try await DedicatedThread.run { () throws(RunnerError) -> [HostLink] in
            let netlink = try KernelNetlink.open()
            let links = try netlink.links()
            let addresses = try netlink.ipv4Addresses()
            return links.map { link in
                HostLink(
                    name: link.name, kind: link.kind,
                    networks: addresses.filter { $0.index == link.index }.map {
                        IPv4Network(address: $0.address, prefix: $0.prefix)
                    })
            }
        }
    }

    package func addBridge(_ name: String, gateway: IPv4Network) async throws(RunnerError) {
        try await DedicatedThread.run { () throws(RunnerError) in
            let netlink = try KernelNetlink.open()
            try netlink.addBridge(name)
            guard let index = try netlink.index(of: name) else {
                throw RunnerError(
                    .notFound, input: name, problem: "the bridge vanished right after it was made",
                    fix: "check that no network manager on this host removes bridges, then run the job again")
            }
            try netlink.addAddress(gateway.address, prefix: gateway.prefix, index: index)
            try netlink.setUp(index: index)
        }
    }

    @discardableResult
    package func deleteLink(_ name: String) async -> Bool {
        await DedicatedThread.run {
            (try? KernelNetlink.open().deleteLink(name)) ?? false
        }
    }

    package func configureGuest(leader: Int32, device: String, address: IPv4Network, gateway: UInt32)
        async throws(RunnerError)
    {
        try await DedicatedThread.run { () throws(RunnerError) in
            let netlink = try KernelNetlink.open(networkNamespaceOf: leader)
            guard let index = try netlink.index(of: device) else {
                throw RunnerError(
                    .notFound, input: device, problem: "the guest has no such link (process \(leader)'s network)",
                    fix: "check the guest's log: systemd-nspawn makes it with --network-bridge")
            }
            try netlink.addAddress(address.address, prefix: address.prefix, index: index)
            try netlink.setUp(index: index)
            try netlink.addDefaultRoute(via: gateway, index: index)
        }
    }
}
