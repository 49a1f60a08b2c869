import RunnerCore
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
}
