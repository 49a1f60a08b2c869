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

    /// Before each job the sweep looks at bridges only (one `ip`); `thorough` (gc --all) lists
    /// the nft tables too. A stale job's bridge and table are removed either way.
    @Test func theSweepBeforeAJobListsBridgesOnly() async {
        let names = GuestNetworkNames()
        let runner = RecordingCommandRunner()
        runner.answer(
            "ip",
            with: CommandResult(
                status: .exited(0), standardOutput: "[{\"ifname\":\"rn-0123abcd\"},{\"ifname\":\"rn-00000001\"}]"))
        runner.answer(
            "nft",
            with: CommandResult(
                status: .exited(0),
                standardOutput: "{\"nftables\": [{\"table\": {\"family\": \"ip\", \"name\": \"runner-job-0000beef\"}}]}"
            ))
        let network = JobNetwork(
            policy: GuestNetworkPolicy(names: names), layout: HostLayout(), runner: runner,
            logger: Logger(label: "test"))
        #expect(await network.sweep(live: ["00000001"], thorough: false) == ["0123abcd"])
        #expect(
            runner.commands.map(\.argv).filter { $0.contains("list") || $0.contains("show") } == [
                IPRoute().listBridges().argv
            ])
        let thorough = RecordingCommandRunner()
        thorough.answer("ip", with: CommandResult(status: .exited(0), standardOutput: "[]"))
        thorough.answer(
            "nft",
            with: CommandResult(
                status: .exited(0),
                standardOutput: "{\"nftables\": [{\"table\": {\"family\": \"ip\", \"name\": \"runner-job-0000beef\"}}]}"
            ))
        let full = JobNetwork(
            policy: GuestNetworkPolicy(names: names), layout: HostLayout(), runner: thorough,
            logger: Logger(label: "test"))
        #expect(await full.sweep(live: []) == ["0000beef"])
        #expect(thorough.commands.map(\.argv).contains(Nft().listTables().argv))
    }
}
