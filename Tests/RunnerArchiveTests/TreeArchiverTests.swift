import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `TreeArchiver` without root: the reproducible mode refuses what it cannot reproduce.
@Suite struct TreeArchiverTests {
    @Test func reproducibleModeRefusesSpecialFiles() async throws {
        try await withTemporaryDirectory("special") { dir in
            #expect(mkfifo(dir.appending("src-fifo"), 0o600) == 0)
            try FilePaths.createDirectory(dir.appending("src"))
            #expect(rename(dir.appending("src-fifo"), dir.appending("src/fifo")) == 0)
            #expect(throws: ArchiveError.self) {
                try TreeArchiver.archive(
                    directory: dir.appending("src"), to: dir.appending("a.tar"),
                    options: .init(fidelity: .reproducible, compression: .none))
            }
            #expect(!FilePaths.exists(dir.appending("a.tar")))
        }
    }
}
