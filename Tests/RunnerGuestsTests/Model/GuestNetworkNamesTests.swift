import RunnerCore
import Testing

@testable import RunnerGuests

@Suite struct GuestNetworkNamesTests {
    @Test func namesAreTheDefaultsOnAHostAndTaggedUnderATestRoot() {
        let host = GuestNetworkNames(layout: HostLayout(root: "/"))
        #expect(host.table == "runner")
        #expect(host.bridge("0123abcd") == "rn-0123abcd")
        #expect(host.jobTable("0123abcd") == "runner-job-0123abcd")
        let test = GuestNetworkNames(layout: HostLayout(root: "/tmp/hook-1"))
        #expect(test.table.hasPrefix("runner-") && test.table.count == 11)
        #expect(test.bridge("0123abcd").count == 15)
        #expect(test.jobID(bridge: test.bridge("0123abcd")) == "0123abcd")
        #expect(test.jobID(table: test.jobTable("0123abcd")) == "0123abcd")
        // A host's names are never a test root's, and the other way round.
        #expect(host.jobID(bridge: test.bridge("0123abcd")) == nil)
        #expect(test.jobID(bridge: host.bridge("0123abcd")) == nil)
        #expect(host.jobID(bridge: "rn-xyz") == nil)
    }

    @Test func aJobsIDDependsOnItsOwnerOnly() {
        let id = GuestNetworkNames.jobID(ownerPID: 42, startTime: 7)
        #expect(id.count == 8)
        #expect(id == GuestNetworkNames.jobID(ownerPID: 42, startTime: 7))
        #expect(id != GuestNetworkNames.jobID(ownerPID: 42, startTime: 8))
    }
}
