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
}
