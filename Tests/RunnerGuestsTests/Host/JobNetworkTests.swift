import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests

@Suite struct JobNetworkTests {
    @Test func hostNetworksAndSetElementsAreReadFromTheToolsJSON() {
        let addresses = """
            [{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
             {"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"10.213.0.9","prefixlen":16}]}]
            """
        let links = JobNetwork.links(json: addresses)
        #expect(links.map(\.name) == ["lo", "eth0"])
        let networks = links.flatMap(\.networks)
        #expect(networks.map(\.prefix) == [8, 16])
        #expect(networks.last?.address == JobNetwork.ipv4("10.213.0.9"))
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
    static func leftovers(_ names: GuestNetworkNames) -> RecordingCommandRunner {
        let runner = RecordingCommandRunner()
        let bridges = ["0000000a", "0000000b"].map { "{\"ifname\":\"\(names.bridge($0))\"}" }
        runner.answer(
            when: { $0.argv == IPRoute().listBridges().argv },
            with: CommandResult(status: .exited(0), standardOutput: "[\(bridges.joined(separator: ","))]"))
        let tables = ["0000000a", "0000000c"].map {
            "{\"table\": {\"family\": \"ip\", \"name\": \"\(names.jobTable($0))\"}}"
        }
        runner.answer(
            when: { $0.argv == Nft().listTables().argv },
            with: CommandResult(
                status: .exited(0), standardOutput: "{\"nftables\": [\(tables.joined(separator: ","))]}"))
        return runner
    }

    @Test func sweepBeforeAJobLooksAtBridgesOnlyAndAFullSweepAtTablesToo() async {
        let names = GuestNetworkNames(table: "runner-t", bridgePrefix: "rnt-")
        let layout = HostLayout(root: "/nonexistent")
        for tables in [false, true] {
            let runner = Self.leftovers(names)
            let network = JobNetwork(
                policy: GuestNetworkPolicy(names: names), layout: layout, runner: runner, logger: Logger(label: "t"))
            await network.sweep(live: ["0000000a"], tables: tables)
            let argvs = runner.commands.map(\.argv)
            #expect(argvs.contains(IPRoute().listBridges().argv))
            #expect(argvs.contains(Nft().listTables().argv) == tables)
            // The killed job's bridge goes with its table either way; the live job's stay.
            #expect(argvs.contains(IPRoute().deleteLink(names.bridge("0000000b")).argv))
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
                let runner = Self.leftovers(names)
                var policy = GuestPolicy(layout: dir.layout)
                policy.cgroups = GuestCgroups(root: dir.appending("cgroup"))
                var network = GuestNetworkPolicy(names: names)
                network.procSys = procSys
                policy.network = network
                let manager = GuestManager(policy: policy, runner: runner, logger: Logger(label: "t"))
                await manager.gc(all: false, owner: nil, network: sweep)
                let argvs = runner.commands.map(\.argv)
                #expect(argvs.contains(Nft().listTables().argv) == (sweep == .full))
                // The filter table is applied (nft -f) by the full sweep only.
                #expect(argvs.contains(Nft().apply().argv) == (sweep == .full), "\(sweep): \(argvs)")
                #expect(argvs.contains(IPRoute().deleteLink(names.bridge("0000000b")).argv))
            }
        }
    }

    /// The filter table is applied again unless it is exactly as last applied: the same rules
    /// (``GuestNetworkRules/filterTable(_:blocked:)``) and the same listing from `nft` as right
    /// after. Another blocked list, a table changed or gone since, or no record: applied again.
    @Test func theFilterTableIsAppliedAgainUnlessItIsAsLastApplied() async throws {
        let dir = try TemporaryDirectory("filter-record")
        defer { dir.remove() }
        let layout = HostLayout(root: dir.path)
        try FilePaths.createDirectory(layout.runtimeDirectory, mode: 0o755)
        let names = GuestNetworkNames(table: "runner-t", bridgePrefix: "rnt-")
        func network(listing: String?) -> JobNetwork {
            let runner = RecordingCommandRunner()
            runner.answer(
                when: { $0.argv == Nft().listTable(family: "inet", name: names.table).argv },
                with: listing.map { CommandResult(status: .exited(0), standardOutput: $0) }
                    ?? CommandResult(status: .exited(1), standardError: "Error: No such file or directory"))
            return JobNetwork(
                policy: GuestNetworkPolicy(names: names), layout: layout, runner: runner, logger: Logger(label: "t"))
        }
        let rules = GuestNetworkRules.filterTable(names, blocked: [])
        let applied = network(listing: "{\"nftables\": [1]}")
        #expect(await !applied.filterTableIsCurrent(rules))
        await applied.rememberFilterTable(rules)
        #expect(await applied.filterTableIsCurrent(rules))
        #expect(await !applied.filterTableIsCurrent(GuestNetworkRules.filterTable(names, blocked: ["10.9.0.0/16"])))
        #expect(await !network(listing: "{\"nftables\": [2]}").filterTableIsCurrent(rules))
        #expect(await !network(listing: nil).filterTableIsCurrent(rules))
        // A table that cannot be listed right after it is applied is not remembered.
        await network(listing: nil).rememberFilterTable(rules)
        #expect(await !applied.filterTableIsCurrent(rules))
    }
}
