import RunnerCore

/// The nftables rulesets of private networks, as text for `nft -f -` (each one transaction that
/// replaces the table whole, so applying it again is harmless).
public enum GuestNetworkRules {
    /// The cloud metadata services' addresses (AWS/GCP/Azure/OpenStack, AWS's IPv6, Alibaba): always blocked.
    public static let metadataAddresses = ["169.254.169.254", "100.100.100.200", "fd00:ec2::254"]

    /// The runner's filter table (`inet NAME`): from any job bridge (`iifname "rn-*"`), the host
    /// itself is unreachable (input: only replies to connections the host opened), loopback
    /// destinations are dropped before routing, and the metadata addresses plus `blocked` are
    /// rejected on the way out (forward). What leaves any job bridge for elsewhere is
    /// masqueraded here too (postrouting), so a job without published ports needs no table of its
    /// own.
    public static func filterTable(_ names: GuestNetworkNames, blocked: [String]) -> String {
        let (v4, v6) = split(metadataAddresses + blocked)
        let bridges = "\"\(names.bridgePrefix)*\""
        var text = "table inet \(names.table) {}\ndelete table inet \(names.table)\n"
        text += "table inet \(names.table) {\n"
        text += "\tset blocked4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n"
        text += "\t\telements = { \(v4.joined(separator: ", ")) }\n\t}\n"
        text += "\tset blocked6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t\tauto-merge\n"
        text += "\t\telements = { \(v6.joined(separator: ", ")) }\n\t}\n"
        text += "\tchain prerouting {\n\t\ttype filter hook prerouting priority raw; policy accept;\n"
        text += "\t\tiifname \(bridges) ip daddr 127.0.0.0/8 drop\n"
        text += "\t\tiifname \(bridges) ip6 daddr ::1 drop\n\t}\n"
        text += "\tchain input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n"
        text += "\t\tiifname \(bridges) ct state established,related accept\n"
        text += "\t\tiifname \(bridges) reject with icmpx admin-prohibited\n\t}\n"
        text += "\tchain forward {\n\t\ttype filter hook forward priority filter - 10; policy accept;\n"
        text += "\t\tiifname \(bridges) ip daddr @blocked4 reject with icmpx admin-prohibited\n"
        text += "\t\tiifname \(bridges) ip6 daddr @blocked6 reject with icmpx admin-prohibited\n\t}\n"
        // Every job's way out: what leaves a job bridge for elsewhere is masqueraded, and so is
        // the host's own 127.0.0.1 onto a bridge (published ports reached from the host).
        text += "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        text += "\t\toifname \(bridges) ip saddr 127.0.0.0/8 masquerade\n"
        text += "\t\tiifname \(bridges) oifname != \(bridges) masquerade\n\t}\n"
        text += "}\n"
        return text
    }

    /// Job `id`'s nat table (`ip NAME-job-ID`), for a job with published ports: each port of
    /// `attachments` is DNATed to its guest from every local address (or the one it names), for
    /// connections from outside and from the host itself (from 127.0.0.1 too: the filter table
    /// masquerades it onto the bridge, whose `route_localnet` allows it); never for packets that
    /// come from a job bridge.
    ///
    /// `replacing` (the default) replaces a table already there whole. Without it the table must
    /// be new (`create`: the transaction fails when it exists), which spares the kernel the
    /// delete (`nft` runs ≈3 ms instead of ≈16 ms: a delete waits for an RCU grace period).
    public static func jobTable(
        _ names: GuestNetworkNames, id: String, attachments: [GuestNetworkAttachment], replacing: Bool = true
    ) -> String {
        let table = names.jobTable(id)
        var dnat: [String] = []
        for attachment in attachments {
            for port in attachment.ports {
                let proto = port.udp ? "udp" : "tcp"
                let match = port.hostAddress.map { "ip daddr \($0)" } ?? "fib daddr type local"
                dnat.append(
                    "\(match) \(proto) dport \(port.hostPort) dnat to \(attachment.address):\(port.containerPort)")
            }
        }
        var text = replacing ? "table ip \(table) {}\ndelete table ip \(table)\n" : "create table ip \(table)\n"
        text += "table ip \(table) {\n"
        text += "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        for rule in dnat { text += "\t\tiifname != \"\(names.bridgePrefix)*\" \(rule)\n" }
        text += "\t}\n"
        text += "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n"
        for rule in dnat { text += "\t\t\(rule)\n" }
        text += "\t}\n"
        text += "}\n"
        return text
    }

    /// IPv4 and IPv6 entries apart (IPv4-mapped forms are not expected).
    static func split(_ networks: [String]) -> (v4: [String], v6: [String]) {
        var v4: [String] = []
        var v6: [String] = []
        for network in networks where !v4.contains(network) && !v6.contains(network) {
            if network.contains(":") { v6.append(network) } else { v4.append(network) }
        }
        return (v4, v6)
    }

    /// The guests' resolv.conf from the host's: the upstream servers systemd-resolved uses
    /// (`resolved`, its `/run/systemd/resolve/resolv.conf`) when it runs, else the host's
    /// `/etc/resolv.conf`; loopback servers (127.0.0.53 and friends, unreachable from a guest)
    /// dropped, `search` and `options` lines kept.
    public static func resolvConf(host text: String) -> String {
        var lines: [String] = []
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let keyword = words.first else { continue }
            switch keyword {
            case "nameserver":
                guard words.count >= 2 else { continue }
                let server = String(words[1])
                if server.hasPrefix("127.") || server == "::1" || server == "0.0.0.0" { continue }
                lines.append("nameserver " + server)
            case "search", "domain", "options":
                lines.append(words.joined(separator: " "))
            default:
                continue
            }
        }
        return lines.map { $0 + "\n" }.joined()
    }
}
