import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests

#if canImport(Glibc)
    import Glibc
#endif

/// The relay's record cache: one decode per version of the file, never a stale record.
@Suite struct GuestRecordCacheTests {
    @Test func aRecordIsDecodedOncePerVersionOfItsFile() throws {
        let dir = try TemporaryDirectory("record-cache")
        var manager = try JobSliceTeardownTests.manager(dir, RecordingCommandRunner())
        manager.recordCache = GuestRecordCache()
        let name = "rg-0123456789ab"
        var record = JobSliceTeardownTests.record(name, job: "0123abcd")
        try manager.save(record)

        #expect(try manager.record(name) == record)
        #expect(try manager.record(name) == record)
        #expect(manager.recordCache?.hits == 1)

        // A changed record (written and renamed into place, as every save is) is read again,
        // even one of the same size.
        record.relayPID = 4242
        try manager.save(record)
        #expect(try manager.record(name)?.relayPID == 4242)
        record.relayPID = 4343
        try manager.save(record)
        #expect(try manager.record(name)?.relayPID == 4343)
        #expect(manager.recordCache?.hits == 1)

        // A removed record is gone; so is its entry.
        unlink(manager.layout.guestRecord(name))
        #expect(try manager.record(name) == nil)
        #expect(throws: RunnerError.self) { try manager.running(name) }
    }
}
