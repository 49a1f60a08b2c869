import RunnerCore
import Testing

@testable import RunnerGuests

@Suite struct NftTests {
    @Test func everyOperationsArgv() {
        #expect(Nft().apply().argv == ["nft", "-f", "-"])
        #expect(
            Nft().listTable(family: "inet", name: "runner").argv == ["nft", "-j", "list", "table", "inet", "runner"])
        #expect(Nft().showTable(family: "inet", name: "runner").argv == ["nft", "list", "table", "inet", "runner"])
        #expect(Nft().listTables().argv == ["nft", "-j", "list", "tables"])
        #expect(
            Nft().deleteTable(family: "ip", name: "runner-job-1").argv == [
                "nft", "delete", "table", "ip", "runner-job-1",
            ])
        #expect(Nft(executable: "/usr/sbin/nft").apply().argv.first == "/usr/sbin/nft")
    }
}
