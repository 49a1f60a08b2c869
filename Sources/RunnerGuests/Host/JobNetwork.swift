import FoundationEssentials
import Logging
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// What `RUNNER_GUEST_NETWORK=private` (the default) decides: names, blocked networks, the pool.
public struct GuestNetworkPolicy: Sendable, Hashable {
    public var names: GuestNetworkNames
    /// `RUNNER_GUEST_BLOCKED_NETS`: rejected besides ``GuestNetworkRules/metadataAddresses``.
    public var blocked: [String]
    /// The first two octets of the /16 job subnets come from (`10.213`): one /24 per job, the
    /// first one no host address overlaps.
    public var pool: String = "10.213"
    /// Where the kernel's sysctls are (`/proc/sys`): the real one even with a test root, like
    /// ``GuestCgroups/root``.
    public var procSys: String = "/proc/sys"

    public init(names: GuestNetworkNames, blocked: [String] = []) {
        self.names = names
        self.blocked = blocked
    }
}

extension GuestNetworkPolicy {
    /// What is wrong with the runner's filter table now (missing, or not rejecting a metadata
    /// address or a blocked network), or nil (what `runner-agent doctor` reports).
    package func checkFilterTable(layout: HostLayout, runner: any CommandRunner) async -> String? {
        await JobNetwork(policy: self, layout: layout, runner: runner, logger: Logger(label: "runner.network"))
            .checkFilterTable()
    }
}

/// How much of the host's network state a guest sweep (``GuestManager/gc(all:owner:network:)``)
/// looks at.
public enum NetworkSweep: Sendable, Hashable {
    /// The bridges and nat tables of every gone job, then the runner's filter table applied
    /// again: `ci-nspawn-run gc` (and `gc --all` at the service's start).
    case full
    /// The bridges of gone jobs only (each removed with its nat table), and the filter table
    /// left as it is: the hook's sweep before a job, whose own bridge applies the filter table
    /// again (``JobNetwork/attach(id:others:)``). Tables without a bridge wait for a full sweep.
    case bridges
}

/// The host side of private networks: the runner's filter table, one bridge and one nat table
/// per job, the guest end of each veth, and their removal. Links, addresses and routes are
/// changed in process (``NetworkLinks``: rtnetlink), the rules by `nft` (``Nft``); nothing
/// assumes systemd-networkd.
struct JobNetwork: Sendable {
    var policy: GuestNetworkPolicy
    var layout: HostLayout
    var runner: any CommandRunner
    var logger: Logger
    var links: any NetworkLinks = KernelNetworkLinks()

    var names: GuestNetworkNames { policy.names }

    // MARK: the filter table

    /// Applies the runner's filter table (idempotent: it replaces the table whole) and turns on
    /// IPv4 forwarding.
    func ensureFilterTable() async throws(RunnerError) {
        try writeSysctl("net/ipv4/ip_forward", "1", otherwise: "guests reach nothing beyond their job's bridge")
        let rules = GuestNetworkRules.filterTable(names, blocked: policy.blocked)
        let command = Nft().apply()
        try await runner.run(command, input: Array(rules.utf8), output: .captured).checked(
            command, fix: Self.nftFix)
        await rememberFilterTable(rules)
    }

    static let nftFix = "install nftables (the runner's guest network needs nft), or set RUNNER_GUEST_NETWORK=host"

    /// What ``HostLayout/guestNetworkFilterRecord`` holds: the digest of the filter table's
    /// rules last applied, of `nft`'s listing of the table right after, and the nftables
    /// generation at which the table was last known to list so (none: unknown).
    struct FilterRecord: Equatable {
        var rules: String
        var listing: String
        var generation: UInt32?

        var text: String { rules + "\n" + listing + "\n" + (generation.map { "\($0)\n" } ?? "") }

        init(rules: String, listing: String, generation: UInt32?) {
            self.rules = rules
            self.listing = listing
            self.generation = generation
        }

        init?(text: String) {
            let lines = text.split(separator: "\n").map(String.init)
            guard lines.count == 2 || lines.count == 3 else { return nil }
            rules = lines[0]
            listing = lines[1]
            generation = lines.count == 3 ? UInt32(lines[2]) : nil
        }
    }

    func readFilterRecord() -> FilterRecord? {
        guard let bytes = try? FilePaths.read(layout.guestNetworkFilterRecord) else { return nil }
        return FilterRecord(text: String(decoding: bytes, as: UTF8.self))
    }

    private func writeFilterRecord(_ record: FilterRecord) {
        let path = layout.guestNetworkFilterRecord
        if (try? AtomicFile.write(Array(record.text.utf8), to: path, mode: 0o600, durable: false)) == nil {
            unlink(path)
        }
    }

    /// The digest of `nft`'s listing of the filter table now; nil when it cannot be listed.
    private func filterTableListingDigest() async -> String? {
        guard let result = try? await runner.run(Nft().showTable(family: "inet", name: names.table)),
            result.status.isSuccess
        else { return nil }
        return SHA256Digest.hex(of: Array(result.standardOutput.utf8))
    }

    /// The listing's digest, with the generation it holds at when nothing changed while it was
    /// taken (nil: something did, or the generation cannot be read).
    private func listingAtGeneration() async -> (listing: String?, generation: UInt32?) {
        let before = await links.rulesetGeneration()
        let listing = await filterTableListingDigest()
        let after = await links.rulesetGeneration()
        return (listing, before != nil && before == after ? before : nil)
    }

    /// Records that `rules` were just applied, with `nft`'s listing of the table now; without a
    /// listing, forgets (the next job applies the table again).
    func rememberFilterTable(_ rules: String) async {
        let (listing, generation) = await listingAtGeneration()
        guard let listing else {
            unlink(layout.guestNetworkFilterRecord)
            return
        }
        writeFilterRecord(
            FilterRecord(rules: SHA256Digest.hex(of: Array(rules.utf8)), listing: listing, generation: generation))
    }

    /// Makes sure the filter table is exactly what the runner applies, before a job's guest can
    /// start: applied again unless it is still as last applied (the blocked list may have
    /// changed, someone may have flushed it or a firewall manager reloaded).
    ///
    /// - The nftables generation still the recorded one: no table changed since the table was
    ///   last listed as recorded. Nothing runs (a job without published ports runs no `nft`).
    /// - Otherwise `nft` lists the table: the recorded listing, and the record takes the new
    ///   generation; another listing (or no record of these rules), and the table is applied
    ///   again.
    func ensureFilterTableBeforeJob() async throws(RunnerError) {
        let filter = GuestNetworkRules.filterTable(names, blocked: policy.blocked)
        if let record = readFilterRecord(), record.rules == SHA256Digest.hex(of: Array(filter.utf8)) {
            if let recorded = record.generation, await links.rulesetGeneration() == recorded { return }
            let (listing, generation) = await listingAtGeneration()
            if listing == record.listing {
                if let generation, generation != record.generation {
                    var updated = record
                    updated.generation = generation
                    writeFilterRecord(updated)
                }
                return
            }
            logger.info("the runner's filter table changed since it was applied: applying it again")
        }
        let command = Nft().apply()
        try await runner.run(command, input: Array(filter.utf8), output: .captured).checked(command, fix: Self.nftFix)
        await rememberFilterTable(filter)
    }

    /// Runs `change` (one `nft` transaction of ours that leaves the filter table alone: a job's
    /// nat table made, replaced or deleted) and, when it was the only transaction meanwhile
    /// (the generation moved by one) and the table was known current before, records the new
    /// generation: the next job's check stays free.
    @discardableResult
    private func keepingFilterRecord<T, E: Error>(_ change: () async throws(E) -> T) async throws(E) -> T {
        let before = await links.rulesetGeneration()
        let result = try await change()
        if let before, let after = await links.rulesetGeneration(), after == before &+ 1,
            var record = readFilterRecord(), record.generation == before
        {
            record.generation = after
            writeFilterRecord(record)
        }
        return result
    }

    /// What is wrong with the filter table now, or nil: it exists and rejects every metadata
    /// address and every blocked network.
    func checkFilterTable() async -> String? {
        let command = Nft().listTable(family: "inet", name: names.table)
        guard let result = try? await runner.run(command), result.status.isSuccess else {
            return "the nftables table inet \(names.table) is missing"
        }
        let listed = Set(Self.setElements(json: result.standardOutput))
        let missing = (GuestNetworkRules.metadataAddresses + policy.blocked).filter { !listed.contains($0) }
        return missing.isEmpty
            ? nil : "the nftables table inet \(names.table) does not block \(missing.joined(separator: ", "))"
    }

    /// Every element of the sets in `nft -j list table` output: addresses (`169.254.169.254`)
    /// and networks (`10.0.0.0/8`), as text.
    static func setElements(json: String) -> [String] {
        struct Listing: Decodable {
            struct Entry: Decodable { var set: NamedSet? }
            struct NamedSet: Decodable { var elem: [Element]? }
            var nftables: [Entry]
        }
        enum Element: Decodable {
            case address(String)
            case prefix(String)
            case other
            init(from decoder: any Decoder) throws {
                if let text = try? decoder.singleValueContainer().decode(String.self) {
                    self = .address(text)
                    return
                }
                struct Prefixed: Decodable {
                    struct Prefix: Decodable {
                        var addr: String
                        var len: Int
                    }
                    var prefix: Prefix
                }
                if let prefixed = try? decoder.singleValueContainer().decode(Prefixed.self) {
                    self = .prefix("\(prefixed.prefix.addr)/\(prefixed.prefix.len)")
                    return
                }
                self = .other
            }
        }
        guard let listing = try? JSONDecoder().decode(Listing.self, from: Data(json.utf8)) else { return [] }
        return listing.nftables.flatMap { $0.set?.elem ?? [] }.compactMap {
            switch $0 {
            case .address(let text), .prefix(let text): text
            case .other: nil
            }
        }
    }

    // MARK: a job's network

    /// The job's bridge (created with the job's first guest, on a free /24 of the pool) and an
    /// address on it for one more guest. `others` are the records of the job's other guests.
    func attach(id: String, others: [GuestRecord]) async throws(RunnerError) -> GuestNetworkAttachment {
        let bridge = names.bridge(id)
        let existing = others.compactMap(\.network).filter { $0.id == id }
        // One look at the host's links and addresses: is the bridge there, which /24s are taken.
        let hostLinks = try await links.hostLinks()
        let exists = hostLinks.contains { $0.name == bridge }
        let subnet: String
        if let first = existing.first, exists {
            subnet = first.subnet
        } else {
            if exists {
                // A bridge no live guest of the job uses: left by a killed job (with its table).
                await remove(id: id)
            }
            subnet = try freeSubnet(preferring: id, taken: hostLinks.flatMap(\.networks))
            try await createBridge(bridge, gateway: subnet + ".1")
            try writeSysctl("net/ipv4/ip_forward", "1", otherwise: "guests reach nothing beyond their job's bridge")
            try await ensureFilterTableBeforeJob()
        }
        let used = Set(existing.filter { $0.subnet == subnet }.map(\.address))
        guard let host = (2...254).first(where: { !used.contains("\(subnet).\($0)") }) else {
            throw RunnerError(
                .unsupported, input: bridge, problem: "the job's network has no free address (253 guests)",
                fix: "use fewer services")
        }
        return GuestNetworkAttachment(id: id, bridge: bridge, subnet: subnet, address: "\(subnet).\(host)")
    }

    private func createBridge(_ bridge: String, gateway: String) async throws(RunnerError) {
        guard let address = Self.ipv4(gateway) else {
            throw RunnerError(.internal, input: gateway, problem: "is not an IPv4 address")
        }
        try await links.addBridge(bridge, gateway: IPv4Network(address: address, prefix: 24))
        // No IPv6 on the bridge (no link-local address for guests to reach the host by); the
        // host's own connections to 127.0.0.1 may be DNATed onto it (published ports).
        try? writeSysctl("net/ipv6/conf/\(bridge)/disable_ipv6", "1")
        try writeSysctl(
            "net/ipv4/conf/\(bridge)/route_localnet", "1",
            otherwise: "published ports are reachable on the host's own addresses, not on its 127.0.0.1")
    }

    /// The first /24 of the pool, from the one `id` hashes to, that no network in `taken` (the
    /// host's addresses) overlaps.
    func freeSubnet(preferring id: String, taken: [IPv4Network]) throws(RunnerError) -> String {
        let start = Int(UInt32(id, radix: 16) ?? 0) % 256
        for offset in 0..<256 {
            let subnet = policy.pool + ".\((start + offset) % 256)"
            guard let base = Self.ipv4(subnet + ".0") else { continue }
            let overlaps = taken.contains { network in
                let prefix = min(network.prefix, 24)
                let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)
                return base & mask == network.address & mask
            }
            if !overlaps { return subnet }
        }
        throw RunnerError(
            .unsupported, input: policy.pool + ".0.0/16",
            problem: "no /24 of the guests' network pool is free of the host's own networks",
            fix: "set RUNNER_GUEST_NETWORK=host, or free a /24 of \(policy.pool).0.0/16 on this host")
    }

    static func ipv4(_ text: String) -> UInt32? {
        var value = in_addr()
        guard inet_pton(AF_INET, text, &value) == 1 else { return nil }
        return UInt32(bigEndian: value.s_addr)
    }

    /// Gives the guest its address and default route, in its network namespace only (its
    /// `host0`, the end of the veth nspawn made), from a socket made there: nothing of the
    /// guest's runs.
    func configureGuest(leader: Int32, _ attachment: GuestNetworkAttachment) async throws(RunnerError) {
        guard let address = Self.ipv4(attachment.address), let gateway = Self.ipv4(attachment.gateway) else {
            throw RunnerError(
                .invalidInput, input: attachment.address, problem: "is not the IPv4 address of a job network")
        }
        try await links.configureGuest(
            leader: leader, device: "host0", address: IPv4Network(address: address, prefix: 24), gateway: gateway)
    }

    /// Replaces job `id`'s nat table with one for `attachments` (its guests now: their
    /// published ports).
    func applyJobTable(id: String, attachments: [GuestNetworkAttachment]) async throws(RunnerError) {
        let rules = GuestNetworkRules.jobTable(names, id: id, attachments: attachments)
        let command = Nft().apply()
        try await keepingFilterRecord { () throws(RunnerError) in
            try await runner.run(command, input: Array(rules.utf8), output: .captured).checked(command)
        }
    }

    /// After a guest of job `id` went: the job's nat table for the guests left, or, when none
    /// is left, the bridge and the table removed.
    func detach(id: String, remaining: [GuestNetworkAttachment]) async {
        if remaining.isEmpty {
            await remove(id: id)
        } else {
            do {
                try await applyJobTable(id: id, attachments: remaining)
            } catch {
                logger.warning("job network: could not update its nat table", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Removes job `id`'s bridge and nat table (absent is fine).
    func remove(id: String) async {
        async let link = links.deleteLink(names.bridge(id))
        async let table: Void = keepingFilterRecord { () async -> Void in
            _ = try? await runner.run(Nft().deleteTable(family: "ip", name: names.jobTable(id)))
        }
        _ = await (link, table)
    }

    /// Removes the bridges and nat tables of jobs not in `live` (left by killed jobs). With
    /// `tables`, jobs are also found by their nat tables alone (a table whose bridge went): a
    /// listing of every table on the host, which costs `nft` tens of milliseconds on a host
    /// with many tables; without, by their bridges only (one look at the host's links, the sweep
    /// before a job).
    func sweep(live: Set<String>, tables: Bool = true) async {
        var ids = Set<String>()
        for bridge in await listBridges() {
            if let id = names.jobID(bridge: bridge), !live.contains(id) { ids.insert(id) }
        }
        if tables, let result = try? await runner.run(Nft().listTables()), result.status.isSuccess {
            for table in Self.tables(json: result.standardOutput) where table.family == "ip" {
                if let id = names.jobID(table: table.name), !live.contains(id) { ids.insert(id) }
            }
        }
        for id in ids.sorted() {
            logger.info("job network removed", metadata: ["network": "\(id)"])
            await remove(id: id)
        }
    }

    /// The names of the host's bridges.
    func listBridges() async -> [String] {
        guard let hostLinks = try? await links.hostLinks() else { return [] }
        return hostLinks.filter { $0.kind == "bridge" }.map(\.name)
    }

    /// The tables of `nft -j list tables` output.
    static func tables(json: String) -> [(family: String, name: String)] {
        struct Listing: Decodable {
            struct Entry: Decodable { var table: Table? }
            struct Table: Decodable {
                var family: String
                var name: String
            }
            var nftables: [Entry]
        }
        guard let listing = try? JSONDecoder().decode(Listing.self, from: Data(json.utf8)) else { return [] }
        return listing.nftables.compactMap { $0.table.map { ($0.family, $0.name) } }
    }

    // MARK: files

    /// The guests' resolv.conf (``GuestNetworkRules/resolvConf(host:)``) from the host's.
    func resolvConf() -> String {
        let resolved = layout.path("/run/systemd/resolve/resolv.conf")
        let source = FilePaths.exists(resolved) ? resolved : layout.path("/etc/resolv.conf")
        let text = (try? FilePaths.read(source)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return GuestNetworkRules.resolvConf(host: text)
    }

    /// Writes `value` to `/proc/sys/<key>`. With `otherwise` (what is lost without it), a host
    /// whose `/proc/sys` is read-only (the appliance itself in a container, such as an nspawn
    /// test host) gets a warning instead of an error; a value already in place is fine there.
    func writeSysctl(_ key: String, _ value: String, otherwise lost: String? = nil) throws(RunnerError) {
        let path = policy.procSys + "/" + key
        let fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 && errno == EROFS, let lost {
            let current = (try? FilePaths.read(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            if current.split(separator: "\n").first.map(String.init) != value {
                logger.warning(
                    "read-only sysctl: \(lost)", metadata: ["sysctl": "\(key)", "wanted": "\(value)"])
            }
            return
        }
        guard fd >= 0 else { throw RunnerError.posix("could not open the sysctl", path, fix: "run as root") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else {
            throw RunnerError.posix("could not set the sysctl", path, fix: "run as root")
        }
    }
}
