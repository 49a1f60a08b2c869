import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// A port a workflow maps (`ports:`): `80`, `8080:80`, `127.0.0.1:8080:80`, `53/udp`.
public struct PortMapping: Sendable, Hashable, Codable {
    /// The address the host side binds; nil: every address.
    public var hostAddress: String?
    /// The host side; equal to ``containerPort`` when the workflow gave none (guests share the
    /// host's network, so the service's own port is already the host's).
    public var hostPort: UInt16
    /// The port the service listens on in its guest.
    public var containerPort: UInt16
    public var udp: Bool

    public init(hostAddress: String? = nil, hostPort: UInt16, containerPort: UInt16, udp: Bool = false) {
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.udp = udp
    }

    /// Whether the host side needs a proxy: the host port differs from the service's own port.
    /// (With equal ports the service's own listener is the host's, on the address it chooses.)
    public var needsProxy: Bool { hostPort != containerPort }

    /// Refuses host ports claimed twice (by two services, or a proxy on another service's own
    /// port), UDP mappings that would need a proxy, and ports `isFree` says are taken on the
    /// host: a service's own port (every address) and a proxy's host side. With
    /// `sharedNetwork` false (a private network per job) only host ports are claimed (each one
    /// is DNATed to its guest, UDP too), and only on IPv4 addresses.
    public static func checkClaims(
        _ services: [(owner: String, ports: [PortMapping])], sharedNetwork: Bool = true,
        isFree: (String?, UInt16) -> Bool
    ) throws(RunnerError) {
        var owners: [UInt16: String] = [:]
        func claim(_ port: UInt16, _ owner: String, address: String?, mapping: PortMapping) throws(RunnerError) {
            if let first = owners[port] {
                throw RunnerError(
                    .invalidInput, input: "service \(owner) port \(port)",
                    problem: first == owner
                        ? "is mapped twice by the same service" : "is also used by service \(first)",
                    fix: "give each service its own host ports (ports: [\"HOST:\(mapping.containerPort)\"])")
            }
            owners[port] = owner
            guard isFree(address, port) else {
                throw RunnerError(
                    .alreadyExists, input: "service \(owner) port \(port)",
                    problem: "is already in use on the host (service guests share the host's network)",
                    fix: "map the service to a free host port (ports: [\"FREE:\(mapping.containerPort)\"]), "
                        + "or stop what listens on \(port)")
            }
        }
        if !sharedNetwork {
            var claimed: [String: String] = [:]
            for (owner, ports) in services {
                for port in ports {
                    if let address = port.hostAddress, address.contains(":") {
                        throw RunnerError(
                            .unsupported, input: "service \(owner) port [\(address)]:\(port.hostPort)",
                            problem: "publishes on an IPv6 address, which this runner's job networks do not",
                            fix: "publish on every address (\(port.hostPort):\(port.containerPort)) or an IPv4 one")
                    }
                    let key = "\(port.hostPort)/\(port.udp ? "udp" : "tcp")"
                    if let first = claimed[key] {
                        throw RunnerError(
                            .invalidInput, input: "service \(owner) port \(port.hostPort)",
                            problem: first == owner
                                ? "is mapped twice by the same service" : "is also used by service \(first)",
                            fix: "give each service its own host ports (ports: [\"HOST:\(port.containerPort)\"])")
                    }
                    claimed[key] = owner
                    guard port.udp || isFree(port.hostAddress, port.hostPort) else {
                        throw RunnerError(
                            .alreadyExists, input: "service \(owner) port \(port.hostPort)",
                            problem: "is already in use on the host",
                            fix: "map the service to a free host port (ports: [\"FREE:\(port.containerPort)\"]), "
                                + "or stop what listens on \(port.hostPort)")
                    }
                }
            }
            return
        }
        for (owner, ports) in services {
            var own: Set<UInt16> = []
            for port in ports {
                if port.udp {
                    guard !port.needsProxy else {
                        throw RunnerError(
                            .unsupported, input: "service \(owner) port \(port.hostPort)/udp",
                            problem: "a UDP port cannot be mapped to another host port on this runner",
                            fix: "use \(port.containerPort)/udp (the service's own port is the host's)")
                    }
                    continue
                }
                if own.insert(port.containerPort).inserted {
                    try claim(port.containerPort, owner, address: nil, mapping: port)
                }
                if port.needsProxy {
                    try claim(port.hostPort, owner, address: port.hostAddress, mapping: port)
                }
            }
        }
    }

    /// The proxy's `ListenStream=`: `PORT`, `ADDRESS:PORT` or `[ADDRESS]:PORT`.
    public var listenAddress: String {
        guard let address = hostAddress else { return String(hostPort) }
        return address.contains(":") ? "[\(address)]:\(hostPort)" : "\(address):\(hostPort)"
    }

    /// Parses one `ports:` entry. Ranges, and UDP mappings that would need a proxy, are refused.
    public static func parse(_ mapping: String) throws(RunnerError) -> PortMapping {
        func bad(_ problem: String, _ fix: String = "use CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER[/tcp]")
            -> RunnerError
        {
            RunnerError(.invalidInput, input: mapping, problem: problem, fix: fix)
        }
        var body = Substring(mapping)
        var udp = false
        if let slash = body.lastIndex(of: "/") {
            let proto = body[body.index(after: slash)...].lowercased()
            guard proto == "tcp" || proto == "udp" else { throw bad("has an unknown protocol \(proto)") }
            udp = proto == "udp"
            body = body[..<slash]
        }
        var address: String?
        if body.hasPrefix("["), let close = body.firstIndex(of: "]") {
            // [::1]:8080:80
            address = String(body[body.index(after: body.startIndex)..<close])
            body = body[body.index(after: close)...]
            guard body.hasPrefix(":") else { throw bad("is not a port mapping") }
            body = body.dropFirst()
        }
        var parts = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if address == nil, parts.count == 3 {
            address = parts.removeFirst()
        }
        guard (1...2).contains(parts.count) else { throw bad("is not a port mapping") }
        if parts.contains(where: { $0.contains("-") }) {
            throw bad("is a port range, which this runner does not map", "list each port on its own")
        }
        guard let container = UInt16(parts[parts.count - 1]), container > 0 else {
            throw bad("has no valid container port (1-65535)")
        }
        var host = container
        if parts.count == 2, !parts[0].isEmpty {
            guard let value = UInt16(parts[0]), value > 0 else { throw bad("has no valid host port (1-65535)") }
            host = value
        } else if parts.count == 2 {
            // `:80` (docker: a random host port): guests share the host network; use the same port.
            host = container
        }
        if let a = address, a.isEmpty || a == "0.0.0.0" || a == "::" {
            address = nil
        }
        if let a = address, !IPAddress.isLiteral(a) {
            throw bad("has a host address that is not an IP address", "use an IPv4 or IPv6 literal, e.g. 127.0.0.1")
        }
        let port = PortMapping(hostAddress: address, hostPort: host, containerPort: container, udp: udp)
        if udp && port.needsProxy {
            throw RunnerError(
                .unsupported, input: mapping,
                problem: "maps a UDP port to another host port, which this runner cannot do "
                    + "(guests share the host's network; only TCP ports are forwarded)",
                fix: "use \(container)/udp (the service's own port is the host's), or a TCP port")
        }
        return port
    }
}
