import CRunnerSystem
import Dispatch
import FoundationEssentials
import Logging
import RunnerCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What `start` answers (printed as JSON by `ci-nspawn-run start`).
public struct GuestInfo: Codable, Sendable, Hashable {
    public var name: String
    public var image: String
    public var leaderPID: Int32
    public var isAlpine: Bool
    /// The guest's address on its job's private network (nil: it shares the host's network).
    public var address: String? = nil
    /// The guest's PID 1 (nil from older helpers: systemd).
    public var initSystem: GuestInit?
    /// A registry image's `Env` (`NAME=VALUE`, in order), for the hook's steps; nil for a baked
    /// image.
    public var imageEnvironment: [String]?
    /// A registry image's `WorkingDir`, when it has one.
    public var imageWorkingDirectory: String?
    /// The UID steps run as in a guest without systemd (its image's `USER`, or `--user`); nil:
    /// root (a booted guest, or older helpers).
    public var stepUID: UInt32?

    public init(
        name: String, image: String, leaderPID: Int32, isAlpine: Bool, initSystem: GuestInit? = nil,
        imageEnvironment: [String]? = nil, imageWorkingDirectory: String? = nil, address: String? = nil
    ) {
        self.address = address
        self.name = name
        self.image = image
        self.leaderPID = leaderPID
        self.isAlpine = isAlpine
        self.initSystem = initSystem
        self.imageEnvironment = imageEnvironment
        self.imageWorkingDirectory = imageWorkingDirectory
    }
}
