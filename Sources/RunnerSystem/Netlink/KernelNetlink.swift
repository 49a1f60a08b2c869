import CRunnerSystem
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// A netlink socket to the kernel. On `NETLINK_ROUTE` (``open()``): the links, IPv4 addresses
/// and routes, read and changed in process, as `ip` does it (`ip -j link show`, `ip link add …
/// type bridge`, `ip address add`, `ip link set … up`, `ip route add default`) without starting a
/// program. On `NETLINK_NETFILTER` (``openNetfilter()``): the nftables ruleset's generation.
///
/// Each call sends one request and reads the kernel's answer to it. Only datagrams the kernel
/// sent (sender port 0) and only messages that carry the request's sequence number are read:
/// in a guest's network namespace its root may send netlink messages to our socket. Calls block
/// for as long as the kernel takes (at most ``timeout`` seconds): run them on a thread of their
/// own (`DedicatedThread`), never on the cooperative pool.
package final class KernelNetlink {
    /// A network interface: its index, name and kind (`IFLA_INFO_KIND`: "bridge", "veth"; nil
    /// for a device without one, such as `lo` or a physical NIC).
    package struct Link: Sendable, Hashable {
        package var index: Int32
        package var name: String
        package var kind: String?

        package init(index: Int32, name: String, kind: String?) {
            self.index = index
            self.name = name
            self.kind = kind
        }
    }

    /// An IPv4 address on a link: the address (host byte order) and its prefix length.
    package struct Address: Sendable, Hashable {
        package var index: Int32
        package var address: UInt32
        package var prefix: Int

        package init(index: Int32, address: UInt32, prefix: Int) {
            self.index = index
            self.address = address
            self.prefix = prefix
        }
    }

    /// How long a call waits for the kernel's answer.
    package static let timeout = 10

    private let fd: Int32
    private var sequence: UInt32
    /// What the socket reaches, for errors: "the host's network" or "the network of process N".
    private let scope: String

    private init(fd: Int32, scope: String) {
        self.fd = fd
        self.scope = scope
        sequence = UInt32(truncatingIfNeeded: Int(MonotonicClock.now() * 1_000_000))
        var on: Int32 = 1
        // The kernel's reason with an error (extended ack), and acks without our request echoed.
        _ = setsockopt(fd, Self.solNetlink, Self.netlinkExtAck, &on, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, Self.solNetlink, Self.netlinkCapAck, &on, socklen_t(MemoryLayout<Int32>.size))
        var wait = timeval(tv_sec: Self.timeout, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        // Its port now (the kernel picks one), not at the first request.
        var local = sockaddr_nl()
        local.nl_family = sa_family_t(AF_NETLINK)
        _ = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
            }
        }
    }

    deinit { close(fd) }

    /// A `NETLINK_ROUTE` socket in this process's network namespace.
    package static func open() throws(RunnerError) -> KernelNetlink {
        try open(protocol: netlinkRoute, scope: "the host's network")
    }

    /// A `NETLINK_NETFILTER` socket in this process's network namespace (nftables).
    package static func openNetfilter() throws(RunnerError) -> KernelNetlink {
        try open(protocol: netlinkNetfilter, scope: "the host's nftables")
    }

    private static func open(protocol: Int32, scope: String) throws(RunnerError) -> KernelNetlink {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), `protocol`)
        guard fd >= 0 else {
            throw RunnerError.posix("could not open a netlink socket", scope, fix: "run as root")
        }
        return KernelNetlink(fd: fd, scope: scope)
    }

    /// The nftables ruleset's generation (`NFT_MSG_GETGEN`, on a ``openNetfilter()`` socket):
    /// the kernel adds one with every committed nftables transaction, whoever makes it (`nft`,
    /// iptables-nft, a firewall manager), and never otherwise. A generation that has not
    /// moved means no table changed.
    package func nftablesGeneration() throws(RunnerError) -> UInt32 {
        let answers: [NetlinkMessage]
        do {
            answers = try request(Self.generationRequest(), what: "the nftables generation")
        } catch {
            throw error.runnerError
        }
        guard let generation = answers.lazy.compactMap({ Self.generation($0) }).first else {
            throw RunnerError(.io, input: "the nftables generation", problem: "the kernel's answer carries none")
        }
        return generation
    }

    /// A socket in the network namespace of process `pid` (a guest's leader), made by a thread
    /// that enters it and ends (`runner_netlink_route_socket_in`): nothing of ours stays in the
    /// guest's namespace, and no program runs. Refuses a process in our own namespace: a PID
    /// that no longer names the guest must not change the host's network.
    package static func open(networkNamespaceOf pid: Int32) throws(RunnerError) -> KernelNetlink {
        let scope = "the network namespace of process \(pid)"
        let path = "/proc/\(pid)/ns/net"
        let ns = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard ns >= 0 else {
            throw RunnerError.posix("could not open the guest's network namespace", path, fix: "check the guest's log")
        }
        defer { close(ns) }
        var theirs = stat()
        var ours = stat()
        guard fstat(ns, &theirs) == 0, stat("/proc/self/ns/net", &ours) == 0 else {
            throw RunnerError.posix("could not read the network namespace", path, fix: "run as root")
        }
        guard theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev else {
            throw RunnerError(
                .invalidInput, input: path, problem: "is the host's own network namespace, not a guest's",
                fix: "check the guest's log: its leader is gone or never had a network of its own")
        }
        let fd = runner_netlink_route_socket_in(ns)
        guard fd >= 0 else {
            throw RunnerError.posix("could not open a netlink socket in the guest's network", path, fix: "run as root")
        }
        return KernelNetlink(fd: fd, scope: scope)
    }

    // MARK: reading

    /// Every link (`RTM_GETLINK` dump).
    package func links() throws(RunnerError) -> [Link] {
        try dump(Self.linksRequest(), what: "the links of \(scope)")
            .compactMap { message in
                guard message.type == Self.newLink else { return nil }
                return Self.link(message.payload[...])
            }
    }

    /// Every IPv4 address (`RTM_GETADDR` dump, family `AF_INET`).
    package func ipv4Addresses() throws(RunnerError) -> [Address] {
        try dump(Self.addressesRequest(), what: "the addresses of \(scope)").compactMap { message in
            guard message.type == Self.newAddress else { return nil }
            return Self.address(message.payload[...])
        }
    }

    /// The index of link `name`, or nil when there is none.
    package func index(of name: String) throws(RunnerError) -> Int32? {
        do {
            let answers = try request(Self.linkRequest(name), what: "link \(name) in \(scope)")
            return answers.first { $0.type == Self.newLink }.flatMap { Self.link($0.payload[...])?.index }
        } catch {
            if error.errno == ENODEV { return nil }
            throw error.runnerError
        }
    }

    // MARK: changing

    /// `ip link add NAME type bridge`: fails when a link of that name exists.
    package func addBridge(_ name: String) throws(RunnerError) {
        try change(Self.addBridgeRequest(name), what: "bridge \(name) in \(scope)")
    }

    /// `ip link delete NAME`: true when it was there.
    @discardableResult
    package func deleteLink(_ name: String) throws(RunnerError) -> Bool {
        do {
            _ = try request(Self.deleteLinkRequest(name), what: "link \(name) in \(scope)")
            return true
        } catch {
            if error.errno == ENODEV { return false }
            throw error.runnerError
        }
    }

    /// `ip address add ADDRESS/PREFIX dev LINK` (IPv4).
    package func addAddress(_ address: UInt32, prefix: Int, index: Int32) throws(RunnerError) {
        try change(
            Self.addAddressRequest(address, prefix: prefix, index: index),
            what: "address \(Self.text(address))/\(prefix) on link \(index) in \(scope)")
    }

    /// `ip link set LINK up`.
    package func setUp(index: Int32) throws(RunnerError) {
        try change(Self.setUpRequest(index: index), what: "link \(index) in \(scope)")
    }

    /// `ip route add default via GATEWAY dev LINK` (IPv4, the main table).
    package func addDefaultRoute(via gateway: UInt32, index: Int32) throws(RunnerError) {
        try change(
            Self.defaultRouteRequest(via: gateway, index: index),
            what: "the default route via \(Self.text(gateway)) in \(scope)")
    }

    // MARK: the requests (what is sent, before the request, ack and dump flags)

    /// `RTM_GETLINK` for every link (a dump).
    static func linksRequest() -> NetlinkMessage {
        NetlinkMessage(type: getLink, flags: 0, payload: ifinfomsg(index: 0))
    }

    /// `RTM_GETADDR` for every IPv4 address (a dump).
    static func addressesRequest() -> NetlinkMessage {
        NetlinkMessage(type: getAddress, flags: 0, payload: ifaddrmsg(prefix: 0, index: 0))
    }

    /// `RTM_GETLINK` for link `name`.
    static func linkRequest(_ name: String) -> NetlinkMessage {
        NetlinkMessage(
            type: getLink, flags: 0, payload: ifinfomsg(index: 0) + NetlinkMessage.attribute(iflaIfname, string: name))
    }

    /// `RTM_NEWLINK` (create, exclusive) for bridge `name`: `IFLA_IFNAME`, then `IFLA_LINKINFO`
    /// holding `IFLA_INFO_KIND` "bridge".
    static func addBridgeRequest(_ name: String) -> NetlinkMessage {
        let info = NetlinkMessage.attribute(iflaInfoKind, string: "bridge")
        let payload =
            ifinfomsg(index: 0) + NetlinkMessage.attribute(iflaIfname, string: name)
            + NetlinkMessage.attribute(iflaLinkinfo | nestedFlag, info)
        return NetlinkMessage(type: newLink, flags: create | exclusive, payload: payload)
    }

    /// `RTM_DELLINK` for link `name`.
    static func deleteLinkRequest(_ name: String) -> NetlinkMessage {
        NetlinkMessage(
            type: deleteLinkType, flags: 0,
            payload: ifinfomsg(index: 0) + NetlinkMessage.attribute(iflaIfname, string: name))
    }

    /// `RTM_NEWADDR` (create, exclusive): `IFA_LOCAL` and `IFA_ADDRESS` both the address.
    static func addAddressRequest(_ address: UInt32, prefix: Int, index: Int32) -> NetlinkMessage {
        let value = ipv4Bytes(address)
        let payload =
            ifaddrmsg(prefix: UInt8(clamping: prefix), index: index)
            + NetlinkMessage.attribute(ifaLocal, value) + NetlinkMessage.attribute(ifaAddress, value)
        return NetlinkMessage(type: newAddress, flags: create | exclusive, payload: payload)
    }

    /// `RTM_NEWLINK` setting `IFF_UP` on link `index`.
    static func setUpRequest(index: Int32) -> NetlinkMessage {
        NetlinkMessage(type: newLink, flags: 0, payload: ifinfomsg(index: index, flags: iffUp, change: iffUp))
    }

    /// `RTM_NEWROUTE` (create, exclusive): 0.0.0.0/0 in the main table, `RTA_GATEWAY` and
    /// `RTA_OIF`, as `ip route add default via GATEWAY dev LINK` sends it.
    static func defaultRouteRequest(via gateway: UInt32, index: Int32) -> NetlinkMessage {
        var header: [UInt8] = [UInt8(AF_INET), 0, 0, 0, tableMain, protocolBoot, 0, unicast]
        header.appendInteger(UInt32(0))  // rtm_flags
        var oif: [UInt8] = []
        oif.appendInteger(index)
        let payload =
            header + NetlinkMessage.attribute(rtaGateway, ipv4Bytes(gateway)) + NetlinkMessage.attribute(rtaOif, oif)
        return NetlinkMessage(type: newRoute, flags: create | exclusive, payload: payload)
    }

    /// `NFT_MSG_GETGEN` (nfnetlink subsystem nftables): `struct nfgenmsg`, family unspecified.
    static func generationRequest() -> NetlinkMessage {
        NetlinkMessage(type: nftablesSubsystem << 8 | nftGetGeneration, flags: 0, payload: [UInt8(AF_UNSPEC), 0, 0, 0])
    }

    /// The generation an `NFT_MSG_NEWGEN` answer carries (`NFTA_GEN_ID`, big-endian); nil for
    /// any other message or a malformed one.
    static func generation(_ answer: NetlinkMessage) -> UInt32? {
        guard answer.type == nftablesSubsystem << 8 | nftNewGeneration, answer.payload.count >= 4 else { return nil }
        let attribute = NetlinkMessage.attributes(answer.payload.dropFirst(4)).first { $0.type == nftaGenerationID }
        guard let value = attribute?.value, value.count == 4 else { return nil }
        return value.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    // MARK: the exchange

    /// The sequence number of the next request (tests forge answers to it).
    package var nextSequence: UInt32 { sequence &+ 1 }

    /// The socket's port (`nl_pid`): where the kernel, and anyone else allowed to, sends to it.
    package var port: UInt32 {
        var address = sockaddr_nl()
        var length = socklen_t(MemoryLayout<sockaddr_nl>.size)
        let rc = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return rc == 0 ? address.nl_pid : 0
    }

    /// A refusal from the kernel: its errno and, when it gave one, its reason.
    struct Failure: Error {
        var errno: Int32
        var reason: String?
        var what: String

        var runnerError: RunnerError {
            var problem = "the kernel refused it: " + String(cString: strerror(errno))
            if let reason, !reason.isEmpty { problem += " (\(reason))" }
            return RunnerError(.io, input: what, problem: problem, fix: "run as root; see the kernel's log (dmesg)")
        }
    }

    private func change(_ message: NetlinkMessage, what: String) throws(RunnerError) {
        do {
            _ = try request(message, what: what)
        } catch {
            throw error.runnerError
        }
    }

    /// Sends `message` with an ack asked for; returns what came before the ack.
    private func request(_ message: NetlinkMessage, what: String) throws(Failure) -> [NetlinkMessage] {
        var message = message
        message.flags |= Self.requestFlag | Self.ackFlag
        return try exchange(message, what: what)
    }

    /// Sends a dump request; returns every message of the dump. A dump the kernel marks
    /// inconsistent (the tables changed while it ran) is asked again, three times at most.
    private func dump(_ message: NetlinkMessage, what: String) throws(RunnerError) -> [NetlinkMessage] {
        var message = message
        message.flags |= Self.requestFlag | Self.dumpFlag
        for attempt in 1...3 {
            do {
                let answers = try exchange(message, what: what)
                if attempt < 3, answers.contains(where: { $0.flags & Self.dumpInterrupted != 0 }) { continue }
                return answers
            } catch {
                throw error.runnerError
            }
        }
        return []
    }

    private func exchange(_ message: NetlinkMessage, what: String) throws(Failure) -> [NetlinkMessage] {
        sequence &+= 1
        var message = message
        message.sequence = sequence
        let bytes = message.bytes
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let sent = withUnsafePointer(to: &kernel) { address in
            address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
            }
        }
        guard sent == bytes.count else { throw Failure(errno: errno, reason: "sending the request", what: what) }
        var answers: [NetlinkMessage] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let received = try receive(into: &buffer, what: what)
            for answer in NetlinkMessage.split(buffer[0..<received]) where answer.sequence == sequence {
                switch answer.type {
                case Self.error:
                    let (code, reason) = Self.errorAnswer(answer)
                    if code != 0 { throw Failure(errno: code, reason: reason, what: what) }
                    return answers
                case Self.done:
                    let code = answer.payload.count >= 4 ? -answer.payload[...].integer(at: 0, as: Int32.self) : 0
                    if code > 0 { throw Failure(errno: code, reason: nil, what: what) }
                    return answers
                case Self.noop:
                    continue
                default:
                    answers.append(answer)
                }
            }
        }
    }

    /// One datagram from the kernel (sender port 0); anything else is dropped unread.
    private func receive(into buffer: inout [UInt8], what: String) throws(Failure) -> Int {
        while true {
            var sender = sockaddr_nl()
            let count = buffer.count
            let received = buffer.withUnsafeMutableBytes { raw -> Int in
                withUnsafeMutablePointer(to: &sender) { address in
                    var vector = iovec(iov_base: raw.baseAddress, iov_len: count)
                    return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                        var header = msghdr()
                        header.msg_name = UnsafeMutableRawPointer(address)
                        header.msg_namelen = socklen_t(MemoryLayout<sockaddr_nl>.size)
                        header.msg_iov = vectorPointer
                        header.msg_iovlen = 1
                        let n = recvmsg(fd, &header, 0)
                        if n >= 0, header.msg_flags & Int32(MSG_TRUNC) != 0 { return -2 }
                        return n
                    }
                }
            }
            if received == -2 { throw Failure(errno: EMSGSIZE, reason: "an answer longer than 64 KiB", what: what) }
            if received < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw Failure(errno: ETIMEDOUT, reason: "no answer in \(Self.timeout) s", what: what)
                }
                throw Failure(errno: errno, reason: "reading the answer", what: what)
            }
            if sender.nl_pid == 0 { return received }
        }
    }

    /// The errno (positive; 0 for an ack) and the kernel's reason (`NLMSGERR_ATTR_MSG`) of an
    /// `NLMSG_ERROR` answer.
    static func errorAnswer(_ answer: NetlinkMessage) -> (Int32, String?) {
        let payload = answer.payload[...]
        guard payload.count >= 4 else { return (EPROTO, "a short error answer") }
        let code = -payload.integer(at: payload.startIndex, as: Int32.self)
        guard answer.flags & ackTLVs != 0 else { return (code, nil) }
        // struct nlmsgerr: the error, the request's header (its payload too unless capped).
        var offset = payload.startIndex + 4 + NetlinkMessage.headerSize
        if answer.flags & ackCapped == 0, payload.endIndex - (payload.startIndex + 4) >= NetlinkMessage.headerSize {
            let requestLength = Int(payload.integer(at: payload.startIndex + 4, as: UInt32.self))
            offset = payload.startIndex + 4 + ((requestLength + 3) & ~3)
        }
        guard offset <= payload.endIndex else { return (code, nil) }
        let reason = NetlinkMessage.attributes(payload[offset...]).first { $0.type == errorAttributeMessage }
        return (code, reason.flatMap { NetlinkMessage.string($0.value) })
    }

    // MARK: family headers

    /// `struct ifinfomsg` (16 bytes).
    static func ifinfomsg(index: Int32, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        var out: [UInt8] = [UInt8(AF_UNSPEC), 0]
        out.appendInteger(UInt16(0))  // ifi_type
        out.appendInteger(index)
        out.appendInteger(flags)
        out.appendInteger(change)
        return out
    }

    /// `struct ifaddrmsg` (8 bytes), family `AF_INET`, scope universe.
    static func ifaddrmsg(prefix: UInt8, index: Int32) -> [UInt8] {
        var out: [UInt8] = [UInt8(AF_INET), prefix, 0, 0]
        out.appendInteger(index)
        return out
    }

    /// The link an `RTM_NEWLINK` answer describes; nil when it is malformed.
    static func link(_ payload: ArraySlice<UInt8>) -> Link? {
        guard payload.count >= 16 else { return nil }
        let index = payload.integer(at: payload.startIndex + 4, as: Int32.self)
        var name: String?
        var kind: String?
        for attribute in NetlinkMessage.attributes(payload.dropFirst(16)) {
            if attribute.type == iflaIfname {
                name = NetlinkMessage.string(attribute.value)
            } else if attribute.type == iflaLinkinfo {
                let info = NetlinkMessage.attributes(attribute.value).first { $0.type == iflaInfoKind }
                kind = info.flatMap { NetlinkMessage.string($0.value) }
            }
        }
        return name.map { Link(index: index, name: $0, kind: kind) }
    }

    /// The IPv4 address an `RTM_NEWADDR` answer describes (`IFA_LOCAL`, else `IFA_ADDRESS`);
    /// nil when it is malformed or not IPv4.
    static func address(_ payload: ArraySlice<UInt8>) -> Address? {
        guard payload.count >= 8, payload[payload.startIndex] == UInt8(AF_INET) else { return nil }
        let prefix = Int(payload[payload.startIndex + 1])
        let index = payload.integer(at: payload.startIndex + 4, as: Int32.self)
        let attributes = NetlinkMessage.attributes(payload.dropFirst(8))
        let value = (attributes.first { $0.type == ifaLocal } ?? attributes.first { $0.type == ifaAddress })?.value
        guard let value, value.count == 4, prefix <= 32 else { return nil }
        let address = value.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return Address(index: index, address: address, prefix: prefix)
    }

    /// An IPv4 address (host byte order) as the 4 bytes of the wire (network order).
    static func ipv4Bytes(_ address: UInt32) -> [UInt8] {
        [UInt8(address >> 24), UInt8(address >> 16 & 0xFF), UInt8(address >> 8 & 0xFF), UInt8(address & 0xFF)]
    }

    static func text(_ address: UInt32) -> String {
        ipv4Bytes(address).map { String($0) }.joined(separator: ".")
    }

    // MARK: the kernel's numbers (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h)

    static let netlinkRoute: Int32 = 0
    static let netlinkNetfilter: Int32 = 12
    static let nftablesSubsystem: UInt16 = 10
    static let nftNewGeneration: UInt16 = 15
    static let nftGetGeneration: UInt16 = 16
    static let nftaGenerationID: UInt16 = 1
    static let solNetlink: Int32 = 270
    static let netlinkCapAck: Int32 = 10
    static let netlinkExtAck: Int32 = 11

    static let noop: UInt16 = 1
    static let error: UInt16 = 2
    static let done: UInt16 = 3
    static let newLink: UInt16 = 16
    static let deleteLinkType: UInt16 = 17
    static let getLink: UInt16 = 18
    static let newAddress: UInt16 = 20
    static let getAddress: UInt16 = 22
    static let newRoute: UInt16 = 24

    static let requestFlag: UInt16 = 0x1
    static let ackFlag: UInt16 = 0x4
    static let dumpInterrupted: UInt16 = 0x10
    static let dumpFlag: UInt16 = 0x300
    static let exclusive: UInt16 = 0x200
    static let create: UInt16 = 0x400
    static let ackCapped: UInt16 = 0x100
    static let ackTLVs: UInt16 = 0x200
    static let errorAttributeMessage: UInt16 = 1

    static let iflaIfname: UInt16 = 3
    static let iflaLinkinfo: UInt16 = 18
    static let iflaInfoKind: UInt16 = 1
    static let nestedFlag: UInt16 = 0x8000
    static let ifaAddress: UInt16 = 1
    static let ifaLocal: UInt16 = 2
    static let rtaOif: UInt16 = 4
    static let rtaGateway: UInt16 = 5
    static let iffUp: UInt32 = 0x1

    static let tableMain: UInt8 = 254
    static let protocolBoot: UInt8 = 3
    static let unicast: UInt8 = 1
}
