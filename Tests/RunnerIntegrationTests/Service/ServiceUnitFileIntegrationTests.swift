import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The shipped `images/host/runner.service`'s commands run for real, as root.
@Suite struct ServiceUnitFileIntegrationTests {
    /// The unit's `ExecStartPre=` command, run for real on a host tree with a guest whose start
    /// was interrupted (its starter is dead), one whose job's owner is gone, and one whose owner
    /// is alive (this test process): all are swept.
    @Test(.requiresRoot, .enabled(if: HookHarness.agent != nil, "needs the built runner-agent"))
    func startPreSweepsStaleGuestRecords() async throws {
        let line = try #require(try ShippedServiceUnit.keys()["[Service]ExecStartPre"]?.first)
        var argv = line.dropFirst().split(separator: " ").map(String.init)
        #expect(argv.first == HostLayout().guestHelper)
        try await withTemporaryDirectory("startpre") { dir in
            let layout = dir.layout
            let names = ["rg-00000000dead", "rg-00000000beef", "rg-00000000a11e"]
            for (index, name) in names.enumerated() {
                var record = GuestRecord(
                    name: name, image: "job", rootfs: "/nonexistent", backend: .direct,
                    status: index == 0 ? .starting : .running, starterPID: 999_999, starterStartTime: 1,
                    nspawnPID: 999_997, nspawnStartTime: 1, binds: [], isAlpine: false)
                if index == 1 {
                    record.ownerPID = 999_998
                    record.ownerStartTime = 1
                }
                if index == 2 {
                    record.ownerPID = getpid()
                    record.ownerStartTime = ProcessTable.startTime(of: getpid())
                }
                try AtomicFile.write(
                    try JSONEncoder().encode(record), to: layout.guestRecord(name), mode: 0o600)
                try AtomicFile.write("", to: layout.guestHostsFile(name))
            }
            // The helper is the agent called ci-nspawn-run.
            let helper = dir.appending(FilePaths.basename(argv[0]))
            symlink(try #require(HookHarness.agent), helper)
            argv[0] = helper
            var command = Command(argv[0], Array(argv.dropFirst()))
            command.environment = ["RUNNER_HOST_ROOT": layout.root]
            let result = try await SystemCommandRunner().run(command)
            #expect(result.status.isSuccess, "\(result.standardError)")
            #expect(result.standardOutput == names.sorted().map { "removed \($0)\n" }.joined())
            #expect(FilePaths.entries(of: layout.guestStateDirectory) == [])
        }
    }
}
