import RunnerCore
import Testing

@testable import RunnerGuests

@Suite struct MachinectlTests {
    @Test func leaderAndList() {
        #expect(
            Machinectl().leader(machine: "g").argv == ["machinectl", "show", "g", "--property=Leader", "--value"])
        #expect(Machinectl().list().argv == ["machinectl", "list", "--no-legend", "--no-pager"])
    }
}
