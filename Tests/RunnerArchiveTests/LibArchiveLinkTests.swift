import RunnerArchive
import Testing

@Test func linksTheSystemLibarchive() {
    #expect(libarchiveVersion.hasPrefix("libarchive 3."))
}
