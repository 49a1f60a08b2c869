import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests
@testable import RunnerSystem

/// The argv of the guest tools (systemd-nspawn, systemd-run, nsenter, machinectl, systemctl,
/// timeout) and the choice of backend.
@Suite struct GuestCommandLineTests {
    @Test func backendDetection() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            #expect(GuestBackend.detect(layout: layout) == .direct)
            try FilePaths.createDirectory(layout.path("/run/systemd/system"))
            #expect(GuestBackend.detect(layout: layout) == .direct)
            try AtomicFile.write("", to: layout.path("/usr/lib/systemd/systemd-machined"))
            #expect(GuestBackend.detect(layout: layout) == .machined)
        }
    }
}
