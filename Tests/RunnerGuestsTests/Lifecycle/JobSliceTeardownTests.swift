import Logging
import RunnerCore
import RunnerSystem
import RunnerTestSupport
import Testing

@testable import RunnerGuests

#if canImport(Glibc)
    import Glibc
#endif

/// A job's slice (machined backend) goes with the job's last guest, and gc removes the slices
/// of jobs that have no guest left: on a stand-in layout and drop-in directory, systemctl
/// recorded, not run.
@Suite struct JobSliceTeardownTests {
    static let job = "0123abcd"
    static let stopSlice = ["systemctl", "stop", "--", "runner-job-0123abcd.slice"]

    static func manager(_ dir: TemporaryDirectory, _ runner: RecordingCommandRunner) throws -> GuestManager {
        let layout = HostLayout(root: dir.path)
        var policy = GuestPolicy(layout: layout, backend: .machined)
        policy.slices = JobSlices(controlDirectory: dir.appending("control"))
        policy.cgroups = GuestCgroups(root: dir.appending("cgroup"))
        policy.network = nil
        try FilePaths.createDirectory(layout.runtimeDirectory)
        try FilePaths.createDirectory(layout.guestStateDirectory, mode: 0o700)
        return GuestManager(policy: policy, runner: runner, logger: Logger(label: "test"))
    }

    /// A running guest of `job` whose owner and leader (this process) are alive.
    static func record(_ name: String, job: String) -> GuestRecord {
        var record = GuestRecord(
            name: name, image: "job", rootfs: "/nonexistent", backend: .machined, status: .running,
            starterPID: getpid(), starterStartTime: nil, binds: [], isAlpine: false)
        record.ownerPID = getpid()
        record.ownerStartTime = ProcessTable.startTime(of: getpid())
        record.leaderPID = getpid()
        record.limitsJob = job
        return record
    }

    static func dropIns(_ dir: TemporaryDirectory, job: String) throws -> String {
        let path = dir.appending("control/" + JobSlices.unit(job: job) + ".d")
        try FilePaths.createDirectory(path)
        try AtomicFile.write("[Slice]\nMemoryMax=1\n", to: path + "/50-MemoryMax.conf")
        return path
    }

    @Test func theSliceGoesWithTheJobsLastGuest() async throws {
        let dir = try TemporaryDirectory("slice-teardown")
        let runner = RecordingCommandRunner()
        let manager = try Self.manager(dir, runner)
        let dropIns = try Self.dropIns(dir, job: Self.job)
        for name in ["rg-0123456789ab", "rg-0123456789ac"] { try manager.save(Self.record(name, job: Self.job)) }

        await manager.teardown(name: "rg-0123456789ab", backend: .machined)
        #expect(!runner.commands.contains { Array($0.argv.suffix(4)) == Self.stopSlice })
        #expect(FilePaths.exists(dropIns), "the job still has a guest")

        await manager.teardown(name: "rg-0123456789ac", backend: .machined)
        #expect(runner.commands.contains { Array($0.argv.suffix(4)) == Self.stopSlice })
        #expect(!FilePaths.exists(dropIns))
    }

    @Test func gcRemovesTheSlicesOfJobsWithNoGuest() async throws {
        let dir = try TemporaryDirectory("slice-gc")
        let runner = RecordingCommandRunner()
        let manager = try Self.manager(dir, runner)
        let killed = try Self.dropIns(dir, job: "0badc0de")
        let live = try Self.dropIns(dir, job: Self.job)
        try manager.save(Self.record("rg-0123456789ab", job: Self.job))

        await manager.gc()
        #expect(!FilePaths.exists(killed))
        #expect(
            runner.commands.contains {
                Array($0.argv.suffix(4)) == ["systemctl", "stop", "--", "runner-job-0badc0de.slice"]
            })
        #expect(FilePaths.exists(live), "a job with a live guest keeps its slice")
        #expect(!runner.commands.contains { Array($0.argv.suffix(4)) == Self.stopSlice })
    }
}
