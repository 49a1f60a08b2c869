import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

/// libarchive is opened on first use, not at start: the doctor loads it, so a host without it is
/// told before a job pulls an image.
@Suite struct DoctorLibarchiveTests {
    @Test func thisHostsLibarchiveIsReportedByVersion() async throws {
        try await withTemporaryDirectory("doc") { dir in
            let finding = Doctor(layout: dir.layout, commandRunner: RecordingCommandRunner(), bootCheck: false)
                .libarchive()
            #expect(finding.status == .ok)
            #expect(finding.detail.hasPrefix("libarchive 3."))
        }
    }

    @Test func aLibraryThatDoesNotLoadIsAProblemWithTheFix() {
        let problem = ArchiveLibrary.probe("libarchive-runner-test-absent.so.13") ?? ""
        let finding = Doctor.libarchiveFinding(
            .failure(.libraryUnavailable(library: ArchiveLibrary.soname, problem: problem)))
        #expect(finding.status == .problem)
        #expect(finding.detail.hasPrefix("libarchive.so.13: could not be loaded ("))
        #expect(
            finding.rendered.contains("fix: install libarchive 3.6 or later (Debian: apt-get install libarchive13)"))
    }
}
