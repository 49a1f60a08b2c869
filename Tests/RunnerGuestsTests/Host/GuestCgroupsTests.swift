import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests

/// Limits per job: a job's guests under one parent cgroup that carries the job's limits. On a
/// stand-in hierarchy (a temporary directory laid out as a hybrid host's `/sys/fs/cgroup`, the
/// cgroup files made beforehand, as the kernel would).
@Suite struct GuestCgroupsTests {
    static let job = "0123abcd"
    static let guest = "rg-0123456789ab"

    /// A hybrid host: `name=systemd` and cgroup2 (no controllers), `memory`, `pids` and `cpu` v1.
    static func hybrid(_ dir: TemporaryDirectory) throws -> String {
        let root = dir.appending("cgroup")
        for mount in ["systemd", "memory", "pids", "cpu"] {
            try FilePaths.createDirectory(root + "/" + mount)
            try AtomicFile.write("", to: root + "/" + mount + "/cgroup.procs")
        }
        try FilePaths.createDirectory(root + "/unified")
        try AtomicFile.write("", to: root + "/unified/cgroup.controllers")
        let files = [
            "memory": ["memory.limit_in_bytes"], "pids": ["pids.max"],
            "cpu": ["cpu.cfs_quota_us", "cpu.cfs_period_us"],
        ]
        for (controller, names) in files {
            for directory in ["runner-guests/job-\(job)", "runner-guests/job-\(job)/\(guest)"] {
                try FilePaths.createDirectory(root + "/\(controller)/\(directory)")
                for name in names { try AtomicFile.write("", to: root + "/\(controller)/\(directory)/\(name)") }
            }
        }
        return root
    }

    static func read(_ path: String) -> String {
        String(decoding: (try? FilePaths.read(path)) ?? [], as: UTF8.self)
    }

    /// The job's limits go on its parent; the guest's own (`--memory`) on the guest's cgroup,
    /// under the parent; the guest starts in the guest's cgroups of every hierarchy.
    @Test func aJobsLimitsAreOnItsParentAndTheGuestsOwnBelow() throws {
        let dir = try TemporaryDirectory("cgroups")
        defer { dir.remove() }
        let root = try Self.hybrid(dir)
        let cgroups = GuestCgroups(root: root)
        let job = GuestCgroups.Job(id: Self.job, limits: GuestLimits(memoryMax: 200 << 20, cpus: 1.5, tasksMax: 100))
        let command = try cgroups.entering(
            guest: Self.guest, job: job, limits: GuestLimits(memoryMax: 64 << 20), Command("systemd-nspawn"))
        let parent = "runner-guests/job-\(Self.job)"
        let own = parent + "/" + Self.guest
        #expect(Self.read(root + "/memory/\(parent)/memory.limit_in_bytes") == "\(200 << 20)")
        #expect(Self.read(root + "/pids/\(parent)/pids.max") == "100")
        #expect(Self.read(root + "/cpu/\(parent)/cpu.cfs_quota_us") == "150000")
        #expect(Self.read(root + "/cpu/\(parent)/cpu.cfs_period_us") == "100000")
        #expect(Self.read(root + "/memory/\(own)/memory.limit_in_bytes") == "\(64 << 20)")
        // No limit of its own for tasks and CPUs: the job's bound it.
        #expect(Self.read(root + "/pids/\(own)/pids.max") == "")
        #expect(Self.read(root + "/cpu/\(own)/cpu.cfs_quota_us") == "")
        let procs = ["systemd", "unified", "memory", "cpu", "pids"].map { root + "/\($0)/\(own)/cgroup.procs" }
        #expect(Array(command.argv.dropFirst(3)) == ["runner-cgroup", "5"] + procs + ["systemd-nspawn"])
        #expect(cgroups.directories(for: Self.guest).allSatisfy { $0.hasSuffix("/" + own) })
        #expect(cgroups.guestNames() == [Self.guest])
        #expect(cgroups.jobIDs() == [Self.job])
    }

    /// Without a job, a guest's limits are its own cgroup's, as before.
    @Test func withoutAJobTheGuestsCgroupCarriesItsLimits() throws {
        #expect(
            GuestCgroups.settings(job: GuestLimits(), guest: GuestLimits(memoryMax: 1 << 20, cpus: 0.5))
                == [
                    .init(
                        controller: "memory", v1: "memory.limit_in_bytes", v2: "memory.max", job: nil,
                        guest: ("1048576", "1048576")),
                    .init(
                        controller: "cpu", v1: "cpu.cfs_quota_us", v2: "cpu.max", job: nil,
                        guest: ("50000", "50000 100000")),
                ])
        #expect(
            GuestCgroups.settings(job: GuestLimits(tasksMax: 64), guest: GuestLimits())
                == [.init(controller: "pids", v1: "pids.max", v2: "pids.max", job: ("64", "64"), guest: nil)])
    }

    /// The parent goes with the job's last guest; gc removes parents no guest is under.
    @Test func theParentGoesWithTheJobsLastGuest() throws {
        let dir = try TemporaryDirectory("cgroups")
        defer { dir.remove() }
        let root = dir.appending("cgroup")
        for mount in ["systemd", "memory"] {
            try FilePaths.createDirectory(root + "/" + mount)
            try AtomicFile.write("", to: root + "/" + mount + "/cgroup.procs")
        }
        let cgroups = GuestCgroups(root: root)
        let parents = ["runner-guests", "runner-guests/job-\(Self.job)"]
        let other = "rg-00000000000a"
        _ = try cgroups.create(guest: Self.guest, parents: parents)
        _ = try cgroups.create(guest: other, parents: parents)
        #expect(cgroups.guestNames() == [Self.guest, other])
        #expect(cgroups.removeNow(guest: Self.guest))
        #expect(cgroups.jobIDs() == [Self.job], "another guest of the job is still under it")
        #expect(cgroups.removeNow(guest: other))
        #expect(cgroups.jobIDs().isEmpty && !FilePaths.exists(root + "/systemd/runner-guests/job-\(Self.job)"))
        // What a killed job left: an empty parent.
        try FilePaths.createDirectory(root + "/memory/runner-guests/job-\(Self.job)")
        try FilePaths.createDirectory(root + "/memory/runner-guests/not-a-job")
        cgroups.removeEmptyJobs()
        #expect(cgroups.jobIDs().isEmpty)
        #expect(FilePaths.exists(root + "/memory/runner-guests/not-a-job"))
    }
}
