import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests

/// A job's slice on the machined backend: its name, the commands that give it the job's limits
/// and stop it, and the runtime drop-ins (on a stand-in control directory) that gc finds and
/// removes.
@Suite struct JobSlicesTests {
    @Test func theSliceIsNamedByTheJob() {
        #expect(JobSlices.unit(job: "0123abcd") == "runner-job-0123abcd.slice")
        #expect(JobSlices.jobID(unit: "runner-job-0123abcd.slice") == "0123abcd")
        for other in [
            "runner-job-0123abcd.service", "runner-job.slice", "runner-job-0123ABCD.slice", "runner-job-01.slice",
            "system.slice", "runner-job-0123abcd-x.slice",
        ] {
            #expect(JobSlices.jobID(unit: other) == nil, "\(other)")
        }
    }

    @Test func limitsGoOnTheSliceAtRuntimeAndItStopsWithItsUnits() {
        let limits = GuestLimits(memoryMax: 400 << 20, cpus: 1.5, tasksMax: 300)
        #expect(
            JobSlices.setLimits(job: "0123abcd", limits).argv == [
                "systemctl", "set-property", "--runtime", "--", "runner-job-0123abcd.slice", "MemoryMax=419430400",
                "CPUQuota=150%", "TasksMax=300",
            ])
        #expect(JobSlices.stop(job: "0123abcd").argv == ["systemctl", "stop", "--", "runner-job-0123abcd.slice"])
    }

    @Test func dropInsOfOurSlicesAreFoundAndRemovedOthersLeft() throws {
        let dir = try TemporaryDirectory("slices")
        let control = dir.appending("system.control")
        let ours = control + "/runner-job-0123abcd.slice.d"
        let other = control + "/user-1000.slice.d"
        for directory in [ours, other] {
            try FilePaths.createDirectory(directory)
            try AtomicFile.write("[Slice]\nMemoryMax=1\n", to: directory + "/50-MemoryMax.conf")
        }
        try AtomicFile.write("[Slice]\nTasksMax=1\n", to: ours + "/50-TasksMax.conf")
        let slices = JobSlices(controlDirectory: control)
        #expect(slices.jobIDs() == ["0123abcd"])
        slices.removeDropIns(job: "0123abcd")
        #expect(!FilePaths.exists(ours))
        #expect(FilePaths.exists(other + "/50-MemoryMax.conf"))
        #expect(slices.jobIDs() == [])
        // Absent is success.
        slices.removeDropIns(job: "0123abcd")
    }
}
