import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import CRunnerSystem
    import Glibc
#endif

/// rtnetlink against the real kernel, in a network namespace the test makes (`unshare --net`):
/// the links, addresses and route a job network makes, read back by `ip`, and a forged answer
/// from another socket in that namespace (what a guest's root can send) never read. No packet
/// leaves the namespace; the host's network is only read.
@Suite(
    .serialized,
    .enabled(
        if: TestHost.isRoot && TestHost.which("unshare") != nil && TestHost.which("ip") != nil,
        "needs root, unshare and ip"))
struct KernelNetlinkIntegrationTests {
    /// A process alone in a new network namespace, until `body` returns.
    static func withNamespace(_ body: (Int32) async throws -> Void) async throws {
        let process = try Spawner.spawn(Command("unshare", ["--net", "sleep", "120"]))
        defer { process.signal(SIGKILL) }
        var ours = stat()
        stat("/proc/self/ns/net", &ours)
        let end = MonotonicClock.now() + 10
        while true {
            var theirs = stat()
            if stat("/proc/\(process.pid)/ns/net", &theirs) == 0, theirs.st_ino != ours.st_ino { break }
            try #require(MonotonicClock.now() < end, "unshare made no namespace")
            try await Task.sleep(for: .milliseconds(10))
        }
        try await body(process.pid)
        process.signal(SIGKILL)
        _ = await process.wait()
    }

    static func ip(_ pid: Int32, _ arguments: [String]) async throws -> String {
        try await SystemCommandRunner().output(Command("nsenter", ["--target=\(pid)", "--net", "ip"] + arguments))
    }

    @Test func aGuestsLinkAddressAndRouteAreWhatIpWouldHaveMade() async throws {
        try await Self.withNamespace { pid in
            // nspawn's end of the veth, as the guest has it (both ends in the test's namespace).
            _ = try await Self.ip(pid, ["link", "add", "host0", "type", "veth", "peer", "name", "peer0"])
            let address = try #require(JobNetwork.ipv4("10.213.77.2"))
            let gateway = try #require(JobNetwork.ipv4("10.213.77.1"))
            try await KernelNetworkLinks().configureGuest(
                leader: pid, device: "host0", address: IPv4Network(address: address, prefix: 24), gateway: gateway)
            let addresses = try await Self.ip(pid, ["-4", "-o", "address", "show", "dev", "host0"])
            #expect(addresses.contains("inet 10.213.77.2/24"), "\(addresses)")
            let link = try await Self.ip(pid, ["-o", "link", "show", "host0"])
            #expect(link.contains(",UP"), "\(link)")
            let route = try await Self.ip(pid, ["-4", "route", "show", "default"])
            #expect(route.contains("default via 10.213.77.1 dev host0"), "\(route)")
            // Again: the kernel's refusal, with its reason, not a silent success.
            await #expect(throws: RunnerError.self) {
                try await KernelNetworkLinks().configureGuest(
                    leader: pid, device: "host0", address: IPv4Network(address: address, prefix: 24),
                    gateway: gateway)
            }
            // A guest without the link: a clear error naming it.
            do throws(RunnerError) {
                try await KernelNetworkLinks().configureGuest(
                    leader: pid, device: "host9", address: IPv4Network(address: address, prefix: 24),
                    gateway: gateway)
                Issue.record("configured a link that does not exist")
            } catch {
                #expect(error.input == "host9")
            }
        }
    }

    @Test func aBridgeIsMadeListedAndDeleted() async throws {
        try await Self.withNamespace { pid in
            let netlink = try KernelNetlink.open(networkNamespaceOf: pid)
            try netlink.addBridge("rnl-bridge")
            #expect(throws: RunnerError.self) { try netlink.addBridge("rnl-bridge") }
            let index = try #require(try netlink.index(of: "rnl-bridge"))
            try netlink.addAddress(0x0AD5_4D01, prefix: 24, index: index)
            try netlink.setUp(index: index)
            let links = try netlink.links()
            #expect(links.contains(KernelNetlink.Link(index: index, name: "rnl-bridge", kind: "bridge")))
            #expect(links.contains { $0.name == "lo" && $0.kind == nil })
            #expect(try netlink.ipv4Addresses().contains(.init(index: index, address: 0x0AD5_4D01, prefix: 24)))
            let shown = try await Self.ip(pid, ["-4", "-o", "address", "show", "dev", "rnl-bridge"])
            #expect(shown.contains("inet 10.213.77.1/24"), "\(shown)")
            #expect(try netlink.deleteLink("rnl-bridge"))
            #expect(try !netlink.deleteLink("rnl-bridge"))
            #expect(try netlink.index(of: "rnl-bridge") == nil)
        }
    }

    /// The nftables generation moves by one with each transaction, whoever makes it, and not
    /// with a listing.
    @Test(.requires("nft")) func theNftablesGenerationMovesWithEveryChange() async throws {
        let netfilter = try KernelNetlink.openNetfilter()
        let table = "rnl_gen_\(getpid())"
        let before = try netfilter.nftablesGeneration()
        try await SystemCommandRunner().run(Command("nft", ["add", "table", "ip", table])).checked(Command("nft"))
        let added = try netfilter.nftablesGeneration()
        _ = try await SystemCommandRunner().output(Command("nft", ["list", "table", "ip", table]))
        let listed = try netfilter.nftablesGeneration()
        try await SystemCommandRunner().run(Command("nft", ["delete", "table", "ip", table])).checked(Command("nft"))
        let deleted = try netfilter.nftablesGeneration()
        #expect(added == before &+ 1)
        #expect(listed == added)
        #expect(deleted == added &+ 1)
    }

    /// The host's own namespace is refused as a guest's: a leader PID that no longer names a
    /// guest must not change the host's network.
    @Test func theHostsOwnNamespaceIsNotAGuests() throws {
        #expect(throws: RunnerError.self) { _ = try KernelNetlink.open(networkNamespaceOf: getpid()) }
        #expect(throws: RunnerError.self) { _ = try KernelNetlink.open(networkNamespaceOf: Int32.max) }
        // The host's links are read (no change).
        #expect(try KernelNetlink.open().links().contains { $0.name == "lo" })
    }

    /// The attack: root in the guest's namespace (which may send to any netlink port there)
    /// forges the answer to our next request, a link named as the canary, from a socket of its
    /// own. It is delivered, and never read: only the kernel's answer is.
    @Test func aForgedAnswerFromAnotherSocketIsNeverRead() async throws {
        try await Self.withNamespace { pid in
            let netlink = try KernelNetlink.open(networkNamespaceOf: pid)
            let ns = open("/proc/\(pid)/ns/net", O_RDONLY | O_CLOEXEC)
            try #require(ns >= 0)
            let forger = runner_netlink_route_socket_in(ns)
            close(ns)
            try #require(forger >= 0)
            defer { close(forger) }
            let canary = "canary\(getpid() % 10000)"
            try #require(netlink.port != 0, "the socket has its port before its first request")
            let sequence = netlink.nextSequence
            let link = NetlinkMessage(
                type: 16, flags: 2, sequence: sequence,
                payload: KernelNetlink.ifinfomsg(index: 4242) + NetlinkMessage.attribute(3, string: canary))
            let done = NetlinkMessage(type: 3, flags: 2, sequence: sequence, payload: [0, 0, 0, 0])
            let forged = link.bytes + done.bytes
            var target = sockaddr_nl()
            target.nl_family = sa_family_t(AF_NETLINK)
            target.nl_pid = netlink.port
            let sent = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(forger, forged, forged.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
            // Delivered: the kernel let root in that namespace send to our socket.
            #expect(sent == forged.count, "errno \(errno)")
            let links = try netlink.links()
            #expect(!links.contains { $0.name == canary || $0.index == 4242 }, "\(links)")
            #expect(links.contains { $0.name == "lo" })
        }
    }
}
