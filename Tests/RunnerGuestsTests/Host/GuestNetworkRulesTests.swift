import RunnerCore
import Testing

@testable import RunnerGuests

@Suite struct GuestNetworkRulesTests {
    @Test func theFilterTableBlocksMetadataAndListedNetworks() {
        let text = GuestNetworkRules.filterTable(GuestNetworkNames(), blocked: ["10.9.0.0/16", "fd00:1::/64"])
        #expect(text.hasPrefix("table inet runner {}\ndelete table inet runner\n"))
        #expect(text.contains("elements = { 169.254.169.254, 100.100.100.200, 10.9.0.0/16 }"))
        #expect(text.contains("elements = { fd00:ec2::254, fd00:1::/64 }"))
        #expect(text.contains("iifname \"rn-*\" ip daddr @blocked4 reject with icmpx admin-prohibited"))
        #expect(text.contains("iifname \"rn-*\" ct state established,related accept"))
        #expect(text.contains("iifname \"rn-*\" reject with icmpx admin-prohibited"))
        #expect(text.contains("iifname \"rn-*\" ip daddr 127.0.0.0/8 drop"))
        // Every job's way out is masqueraded here: a job without ports needs no table of its own.
        #expect(text.contains("type nat hook postrouting priority srcnat; policy accept;"))
        #expect(text.contains("oifname \"rn-*\" ip saddr 127.0.0.0/8 masquerade"))
        #expect(text.contains("iifname \"rn-*\" oifname != \"rn-*\" masquerade"))
    }

    @Test func theJobTablePublishesPorts() {
        let attachment = GuestNetworkAttachment(
            id: "0123abcd", bridge: "rn-0123abcd", subnet: "10.213.5", address: "10.213.5.2",
            ports: [
                PortMapping(hostPort: 8080, containerPort: 80),
                PortMapping(hostAddress: "127.0.0.1", hostPort: 5432, containerPort: 5432),
                PortMapping(hostPort: 53, containerPort: 53, udp: true),
            ])
        let text = GuestNetworkRules.jobTable(GuestNetworkNames(), id: "0123abcd", attachments: [attachment])
        #expect(text.hasPrefix("table ip runner-job-0123abcd {}\ndelete table ip runner-job-0123abcd\n"))
        #expect(text.contains("\t\tiifname != \"rn-*\" fib daddr type local tcp dport 8080 dnat to 10.213.5.2:80\n"))
        #expect(text.contains("\t\tip daddr 127.0.0.1 tcp dport 5432 dnat to 10.213.5.2:5432\n"))
        #expect(text.contains("\t\tfib daddr type local udp dport 53 dnat to 10.213.5.2:53\n"))
        #expect(!text.contains("masquerade"))
        #expect(attachment.gateway == "10.213.5.1")
        #expect(attachment.cidr == "10.213.5.2/24")
    }

    @Test func guestsGetTheUpstreamServersNotTheLoopbackStub() {
        let host = """
            # generated
            nameserver 127.0.0.53
            nameserver 10.0.0.2
            nameserver ::1
            nameserver 2001:db8::53
            options edns0 trust-ad
            search example.internal

            """
        #expect(
            GuestNetworkRules.resolvConf(host: host)
                == "nameserver 10.0.0.2\nnameserver 2001:db8::53\noptions edns0 trust-ad\nsearch example.internal\n")
    }
}
