import CRunnerSystem
import Dispatch
import FoundationEssentials
import Logging
import RunnerCore
import RunnerImages
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What the helper records about one guest under `/run/runner/guests/<name>.json`.
public struct GuestRecord: Codable, Sendable, Hashable {
    public enum Status: String, Codable, Sendable { case starting, running }

    public var name: String
    public var image: String
    public var rootfs: String
    public var backend: GuestBackend
    public var status: Status
    /// The process that is starting the guest (a stale `starting` record has a dead starter).
    public var starterPID: Int32
    public var starterStartTime: UInt64?
    /// The systemd-nspawn process (direct backend).
    public var nspawnPID: Int32?
    public var nspawnStartTime: UInt64?
    /// The guest's PID 1, as seen from the host.
    public var leaderPID: Int32?
    /// The job's owner (the runner's worker); when it is gone the guest is garbage.
    public var ownerPID: Int32?
    public var ownerStartTime: UInt64?
    /// The binds as checked: the caller's source paths (read-only forced for externals). nspawn
    /// got the staging entries of ``stagedBinds`` instead of these paths.
    public var binds: [GuestBind]
    /// The bind sources mounted from their checked descriptors under
    /// `/run/runner/guests/<name>.binds` (see ``BindStaging``).
    public var stagedBinds: [StagedBind]?
    public var isAlpine: Bool
    /// The step relay serving the unprivileged hook (see ``GuestRelay``), when there is one.
    public var relayPID: Int32?
    public var relayStartTime: UInt64?
    /// The guest's user namespace (nil: guest root is host root). With one, the after-step
    /// ownership walk is skipped: binds are idmapped to their owners.
    public var userNamespace: GuestUserNamespace?
    /// Capabilities (`CAP_X`) the job added with `--cap-add` and the admin allowed
    /// (`RUNNER_GUEST_CAP_ADD`): the guest's step units keep them besides docker's defaults.
    public var addedCapabilities: [String]?
    /// The guest's PID 1 (nil: systemd, as for records of older helpers).
    public var initSystem: GuestInit?
    /// Who steps run as on the no-init path (the image's `USER`, resolved in its `/etc/passwd`).
    public var stepUser: ImageUser?
    /// The working directory of steps that name none (the image's `WorkingDir`).
    public var defaultWorkingDirectory: String?
    /// The guest's place on its job's private network (nil: the host's network).
    public var network: GuestNetworkAttachment?
    /// The guest's resource limits (nil: none): the lower of its job's and its own.
    public var limits: GuestLimits?
    /// The job whose parent cgroup (or slice, with machined) carries the job's limits, shared
    /// by all of its guests (nil: no job limits, or a record of an older helper).
    public var limitsJob: String?
}

extension GuestRecord {
    /// The record in `bytes`, read from `path` (named in the error when it does not decode).
    static func decode(_ bytes: [UInt8], path: String) throws(RunnerError) -> GuestRecord {
        do {
            return try JSONDecoder().decode(GuestRecord.self, from: Data(bytes))
        } catch {
            throw RunnerError(
                .invalidInput, input: path, problem: "guest record is unreadable", fix: "run `ci-nspawn-run gc`",
                underlying: error)
        }
    }
}
