import RunnerArchive
import Testing

/// libarchive is the system's, opened on first use (CLibArchive's loader) rather than linked.
@Suite struct LibArchiveLinkTests {
    @Test func loadsTheSystemLibarchive() throws {
        try ArchiveLibrary.load()
        #expect(libarchiveVersion.hasPrefix("libarchive 3."))
        // The system's library has every function the archive layer calls.
        #expect(ArchiveLibrary.probe(ArchiveLibrary.soname) == nil)
    }

    @Test func aMissingLibraryIsNamedWithTheLoadersReason() {
        let problem = ArchiveLibrary.probe("libarchive-runner-test-absent.so.13")
        #expect(problem?.hasPrefix("could not be loaded (") == true)
        #expect(problem?.contains("libarchive-runner-test-absent.so.13") == true)
        let error = ArchiveError.libraryUnavailable(library: "libarchive.so.13", problem: problem ?? "")
        #expect(error.description.hasPrefix("libarchive.so.13: could not be loaded ("))
        #expect(error.fix?.contains("apt-get install libarchive13") == true)
    }

    /// A library that loads but is not libarchive (zlib, which every host has) fails on the first
    /// function it lacks, by name.
    @Test func aLibraryWithoutTheFunctionsIsRefusedByTheFirstMissingOne() {
        #expect(
            ArchiveLibrary.probe("libz.so.1")
                == "has no function archive_entry_clear (libarchive 3.6 or later is needed)")
    }
}
