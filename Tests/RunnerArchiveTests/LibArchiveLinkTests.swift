import RunnerArchive
import Testing

/// The wrapper links the system libarchive.
@Suite struct LibArchiveLinkTests {
    @Test func linksTheSystemLibarchive() {
        #expect(libarchiveVersion.hasPrefix("libarchive 3."))
    }
}
