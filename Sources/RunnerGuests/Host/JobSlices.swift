import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A job's slice on the machined backend: `runner-job-<id>.slice` holds the units of all the
/// job's guests and carries the job's limits (`RUNNER_JOB_*`), so its guests share them (the
/// direct backend's counterpart is the job parent cgroup of ``GuestCgroups``).
///
/// The limits are set with `systemctl set-property --runtime` before the job's first guest
/// starts: a slice needs no unit file, and the runtime drop-ins it writes
/// (`/run/systemd/system.control/runner-job-<id>.slice.d/`) apply when the first guest's unit
/// starts the slice. The slice is stopped and its drop-ins removed with the job's last guest,
/// or by gc for a killed job. The names nest (`runner.slice` › `runner-job.slice` ›
/// `runner-job-<id>.slice`); the two parents carry nothing and stay.
public struct JobSlices: Sendable {
    /// Where `systemctl set-property --runtime` writes its drop-ins.
    public var controlDirectory: String

    public init(controlDirectory: String = "/run/systemd/system.control") {
        self.controlDirectory = controlDirectory
    }

    static let prefix = "runner-job-"

    /// The slice of job `id` (``GuestNetworkNames/jobID(ownerPID:startTime:)``).
    public static func unit(job id: String) -> String { prefix + id + ".slice" }

    /// The job id of one of our job slices (`runner-job-<id>.slice`), or nil for another name.
    public static func jobID(unit: String) -> String? {
        guard unit.hasPrefix(prefix), unit.hasSuffix(".slice") else { return nil }
        let id = String(unit.dropFirst(prefix.count).dropLast(".slice".count))
        return GuestNetworkNames.isJobID(id) ? id : nil
    }

    /// The command that gives job `id`'s slice `limits` (before its first guest starts).
    public static func setLimits(job id: String, _ limits: GuestLimits) -> Command {
        Systemctl().setRuntimeProperties(unit(job: id), limits.unitProperties)
    }

    /// The command that stops job `id`'s slice (and whatever still runs in it).
    public static func stop(job id: String) -> Command {
        Systemctl().stop(unit(job: id), .init(block: true))
    }

    /// The jobs whose slices have runtime drop-ins of ours.
    public func jobIDs() -> Set<String> {
        Set(
            FilePaths.entries(of: controlDirectory).compactMap { entry in
                entry.hasSuffix(".d") ? Self.jobID(unit: String(entry.dropLast(2))) : nil
            })
    }

    /// Removes the runtime drop-ins of job `id`'s slice (files of its `.d` directory, then the
    /// directory). Only the job's own directory is touched; absent is success.
    public func removeDropIns(job id: String) {
        let directory = controlDirectory + "/" + Self.unit(job: id) + ".d"
        for entry in FilePaths.entries(of: directory) where entry.hasSuffix(".conf") {
            unlink(directory + "/" + entry)
        }
        rmdir(directory)
    }
}
