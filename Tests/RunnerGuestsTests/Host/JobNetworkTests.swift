import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests

@Suite struct JobNetworkTests {
    @Test func setElementsAndTablesAreReadFromNftsJSON() {
        let table = """
            {"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "runner"}},
             {"set": {"family": "inet", "name": "blocked4", "table": "runner", "type": "ipv4_addr",
              "elem": ["169.254.169.254", {"prefix": {"addr": "10.9.0.0", "len": 16}}]}}]}
            """
        #expect(JobNetwork.setElements(json: table) == ["169.254.169.254", "10.9.0.0/16"])
        #expect(JobNetwork.tables(json: table).map(\.name) == ["runner"])
    }

    /// A host with one live job (`0000000a`), a bridge left by a killed job (`0000000b`) and a
    /// nat table whose bridge is gone (`0000000c`).
    static func leftovers(_ names: GuestNetworkNames) -> (RecordingCommandRunner, RecordingNetworkLinks) {
        let runner = RecordingCommandRunner()
        // Two bridges of jobs, and links that are not bridges of ours.
        let links = RecordingNetworkLinks(
            ["0000000a", "0000000b"].map { HostLink(name: names.bridge($0), kind: "bridge") } + [
                HostLink(name: "lo"), HostLink(name: names.bridge("0000000d"), kind: "veth"),
                HostLink(name: "docker0", kind: "bridge"),
            ])
        let tables = ["0000000a", "0000000c"].map {
            "{\"table\": {\"family\": \"ip\", \"name\": \"\(names.jobTable($0))\"}}"
        }
        runner.answer(
            when: { $0.argv == Nft().listTables().argv },
            with: CommandResult(
                status: .exited(0), standardOutput: "{\"nftables\": [\(tables.joined(separator: ","))]}"))
        return (runner, links)
    }

    @Test func sweepBeforeAJobLooksAtBridgesOnlyAndAFullSweepAtTablesToo() async {
        let names = GuestNetworkNames(table: "runner-t", bridgePrefix: "rnt-")
        let layout = HostLayout(root: "/nonexistent")
        for tables in [false, true] {
            let (runner, links) = Self.leftovers(names)
            let network = JobNetwork(
                policy: GuestNetworkPolicy(names: names), layout: layout, runner: runner, logger: Logger(label: "t"),
                links: links)
            await network.sweep(live: ["0000000a"], tables: tables)
            let argvs = runner.commands.map(\.argv)
            #expect(argvs.contains(Nft().listTables().argv) == tables)
            // The killed job's bridge goes with its table either way; the live job's stay, and
            // so do links that are not job bridges (a veth named like one, another bridge).
            // (A job found by its table alone has its bridge name deleted too: absent, a no-op.)
            let deleted = ["0000000b"] + (tables ? ["0000000c"] : [])
            #expect(links.calls == ["links"] + deleted.map { "delete \(names.bridge($0))" })
            #expect(argvs.contains(Nft().deleteTable(family: "ip", name: names.jobTable("0000000b")).argv))
            #expect(
                !argvs.contains { $0.contains(names.bridge("0000000a")) || $0.contains(names.jobTable("0000000a")) })
            // A table without a bridge is found by the full sweep only.
            #expect(argvs.contains(Nft().deleteTable(family: "ip", name: names.jobTable("0000000c")).argv) == tables)
        }
    }

    @Test func gcBeforeAJobLeavesTheFilterTableToTheJobsBridge() async throws {
        try await withTemporaryDirectory("net-sweep") { dir in
            let names = GuestNetworkNames(table: "runner-t", bridgePrefix: "rnt-")
            let procSys = dir.appending("proc-sys")
            try FilePaths.createDirectory(procSys + "/net/ipv4", mode: 0o755)
            try AtomicFile.write(Array("0\n".utf8), to: procSys + "/net/ipv4/ip_forward")
            for sweep in [NetworkSweep.bridges, .full] {
                let (runner, links) = Self.leftovers(names)
                var policy = GuestPolicy(layout: dir.layout)
                policy.cgroups = GuestCgroups(root: dir.appending("cgroup"))
                var network = GuestNetworkPolicy(names: names)
                network.procSys = procSys
                policy.network = network
                var manager = GuestManager(policy: policy, runner: runner, logger: Logger(label: "t"))
                manager.networkLinks = links
                await manager.gc(all: false, owner: nil, network: sweep)
                let argvs = runner.commands.map(\.argv)
                #expect(argvs.contains(Nft().listTables().argv) == (sweep == .full))
                // The filter table is applied (nft -f) by the full sweep only.
                #expect(argvs.contains(Nft().apply().argv) == (sweep == .full), "\(sweep): \(argvs)")
                #expect(links.calls.contains("delete \(names.bridge("0000000b"))"))
            }
        }
    }

    /// A job's first guest: the bridge goes on the first /24 from the one the job's id hashes to
    /// that no host address overlaps, with the gateway `.1`; the guest gets `.2` in its own
    /// network namespace; a bridge of the same name left by a killed job goes first.
    @Test func aJobsBridgeTakesAFree24AndItsGuestTheNextAddress() async throws {
        try await withTemporaryDirectory("net-attach") { dir in
            let names = GuestNetworkNames(table: "runner-t", bridgePrefix: "rnt-")
            let procSys = dir.appending("proc-sys")
            try FilePaths.createDirectory(procSys + "/net/ipv4/conf/rnt-0000000b", mode: 0o755)
            try FilePaths.createDirectory(procSys + "/net/ipv6/conf/rnt-0000000b", mode: 0o755)
            for key in [
                "ipv4/ip_forward", "ipv4/conf/rnt-0000000b/route_localnet", "ipv6/conf/rnt-0000000b/disable_ipv6",
            ] {
                try AtomicFile.write(Array("0\n".utf8), to: procSys + "/net/" + key)
            }
            let layout = dir.layout
            try FilePaths.createDirectory(layout.runtimeDirectory, mode: 0o755)
            // Job 0000000b hashes to 10.213.11.0/24, which the host's eth0 overlaps; its bridge
            // is there already (a killed job's), without a live guest.
            let taken = try #require(JobNetwork.ipv4("10.213.11.7"))
            let links = RecordingNetworkLinks([
                HostLink(name: "eth0", networks: [IPv4Network(address: taken, prefix: 24)]),
                HostLink(name: names.bridge("0000000b"), kind: "bridge"),
            ])
            var policy = GuestNetworkPolicy(names: names)
            policy.procSys = procSys
            let network = JobNetwork(
                policy: policy, layout: layout, runner: RecordingCommandRunner(), logger: Logger(label: "t"),
                links: links)
            let attachment = try await network.attach(id: "0000000b", others: [])
            #expect(attachment.subnet == "10.213.12")
            #expect(attachment.address == "10.213.12.2")
            let gateway = try #require(JobNetwork.ipv4("10.213.12.1"))
            #expect(
                links.calls == [
                    "links", "delete \(names.bridge("0000000b"))", "add \(names.bridge("0000000b")) \(gateway)/24",
                ])
            try await network.configureGuest(leader: 42, attachment)
            let address = try #require(JobNetwork.ipv4("10.213.12.2"))
            #expect(links.calls.last == "guest 42 host0 \(address)/24 via \(gateway)")
            #expect(try FilePaths.read(procSys + "/net/ipv4/ip_forward").first == UInt8(ascii: "1"))
        }
    }

    /// A job whose filter table is as recorded runs no `nft` at all while the nftables generation
    /// has not moved since. Another generation: `nft` lists the table; the same listing keeps it
    /// (the record takes the new generation), another one applies it again before the job's
    /// guest could start. A change of our own (a job's nat table) keeps the record current.
    @Test func aJobRunsNftOnlyWhenTheRulesetChanged() async throws {
        try await withTemporaryDirectory("net-nft") { dir in
            let names = GuestNetworkNames(table: "runner-t", bridgePrefix: "rnt-")
            let procSys = dir.appending("proc-sys")
            try FilePaths.createDirectory(procSys + "/net/ipv4", mode: 0o755)
            try AtomicFile.write(Array("1".utf8), to: procSys + "/net/ipv4/ip_forward")
            let ids = ["0000000a", "0000000c", "0000000d", "0000000e"]
            for id in ids {
                try FilePaths.createDirectory(procSys + "/net/ipv4/conf/" + names.bridge(id), mode: 0o755)
                try AtomicFile.write(Array("0".utf8), to: procSys + "/net/ipv4/conf/\(names.bridge(id))/route_localnet")
            }
            let layout = dir.layout
            try FilePaths.createDirectory(layout.runtimeDirectory, mode: 0o755)
            var policy = GuestNetworkPolicy(names: names)
            policy.procSys = procSys
            let filter = GuestNetworkRules.filterTable(names, blocked: [])
            let links = RecordingNetworkLinks(generation: 40)
            func network(listing: String) -> (JobNetwork, RecordingCommandRunner) {
                let runner = RecordingCommandRunner()
                runner.answer(
                    when: { $0.argv == Nft().showTable(family: "inet", name: names.table).argv },
                    with: CommandResult(status: .exited(0), standardOutput: listing))
                let network = JobNetwork(
                    policy: policy, layout: layout, runner: runner, logger: Logger(label: "t"), links: links)
                return (network, runner)
            }
            let (recording, _) = network(listing: "table inet runner-t { }\n")
            await recording.rememberFilterTable(filter)
            #expect(recording.readFilterRecord()?.generation == 40)

            // Nothing changed: no nft.
            let (same, sameRunner) = network(listing: "table inet runner-t { }\n")
            _ = try await same.attach(id: ids[0], others: [])
            #expect(sameRunner.commands.isEmpty, "\(sameRunner.commands.map(\.argv))")

            // Another table changed (the generation moved), ours did not: one listing.
            links.generation = 41
            let (listed, listedRunner) = network(listing: "table inet runner-t { }\n")
            _ = try await listed.attach(id: ids[1], others: [])
            #expect(listedRunner.commands.map(\.argv) == [Nft().showTable(family: "inet", name: names.table).argv])
            #expect(listed.readFilterRecord()?.generation == 41)

            // Ours changed (flushed): applied again.
            links.generation = 45
            let (changed, changedRunner) = network(listing: "table inet runner-t { flushed }\n")
            _ = try await changed.attach(id: ids[2], others: [])
            let applied = zip(changedRunner.commands, changedRunner.inputs).filter { $0.0.argv == Nft().apply().argv }
            #expect(applied.map { String(decoding: $0.1 ?? [], as: UTF8.self) } == [filter])
        }
    }

    /// The filter table is applied again unless it is exactly as last applied: the same rules
    /// (``GuestNetworkRules/filterTable(_:blocked:)``) and the same listing from `nft` as right
    /// after. Another blocked list, a table changed or gone since, or no record: applied again.
    /// (No generation here: every check lists the table.)
    @Test func theFilterTableIsAppliedAgainUnlessItIsAsLastApplied() async throws {
        let dir = try TemporaryDirectory("filter-record")
        defer { dir.remove() }
        let layout = HostLayout(root: dir.path)
        try FilePaths.createDirectory(layout.runtimeDirectory, mode: 0o755)
        let names = GuestNetworkNames(table: "runner-t", bridgePrefix: "rnt-")
        /// Whether the check before a job applied the filter table, with `nft` listing it so.
        func applies(listing: String?, blocked: [String] = []) async throws -> Bool {
            let runner = RecordingCommandRunner()
            runner.answer(
                when: { $0.argv == Nft().showTable(family: "inet", name: names.table).argv },
                with: listing.map { CommandResult(status: .exited(0), standardOutput: $0) }
                    ?? CommandResult(status: .exited(1), standardError: "Error: No such file or directory"))
            var policy = GuestNetworkPolicy(names: names)
            policy.blocked = blocked
            let network = JobNetwork(
                policy: policy, layout: layout, runner: runner, logger: Logger(label: "t"),
                links: RecordingNetworkLinks())
            try await network.ensureFilterTableBeforeJob()
            return runner.commands.contains { $0.argv == Nft().apply().argv }
        }
        let listing = "table inet runner-t { one }\n"
        #expect(try await applies(listing: listing), "no record yet")
        #expect(try await !applies(listing: listing))
        #expect(try await applies(listing: listing, blocked: ["10.9.0.0/16"]), "other rules")
        #expect(try await applies(listing: "table inet runner-t { two }\n"), "another listing")
        // A table that cannot be listed is applied again, and not remembered: the next check
        // applies it again too.
        #expect(try await applies(listing: nil))
        #expect(try await applies(listing: nil))
        #expect(try await applies(listing: listing))
        #expect(try await !applies(listing: listing))
    }
}
