import CRunnerSystem
import Dispatch
import FoundationEssentials
import Logging
import RunnerCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What `start` asks for.
public struct GuestStartRequest: Codable, Sendable, Hashable {
    /// A store name (`debian-bookworm`), or a registry image's unpacked tree by its manifest
    /// digest (`sha256:<64 hex digits>`, see ``HostLayout/ociTree(_:)``).
    public var image: String
    public var binds: [GuestBind]
    /// Names that resolve to 127.0.0.1 in the guest (services share the host network), or, on
    /// a private network, to their address in ``hostAddresses``.
    public var hostAliases: [String]
    /// On a private network: the address each alias resolves to (a service guest's).
    public var hostAddresses: [String: String]
    /// What the container asked for (`--memory`, `--cpus`); the helper applies at most the
    /// administrator's ceilings (``GuestPolicy/limits``).
    public var limits: GuestLimits?
    public var ownerPID: Int32?
    /// Variables for every unit of the guest (a service's `env:`, may hold secrets): written to
    /// a 0600 `system.conf.d` drop-in under `/run/runner/guests`, never to a command line.
    public var environment: [String: String]
    /// Ports the workflow maps: checked free on the host before the boot; those whose host side
    /// differs from the service's own port get a socket-activated proxy in the guest.
    public var ports: [PortMapping]
    /// Capabilities the job adds with `--cap-add` (`CAP_X`); the helper takes only those the
    /// admin allowed (`RUNNER_GUEST_CAP_ADD`).
    public var capabilities: [String]
    /// What the guest is for (nil: the job container). On the no-init path a service's main
    /// process is its image's `Entrypoint` + `Cmd`.
    public var role: GuestRole?
    /// A service's entry point from the workflow, replacing the image's (no-init path).
    public var entrypoint: [String]?
    /// A service's arguments from the workflow, replacing the image's `Cmd` (no-init path).
    public var arguments: [String]?
    /// docker's `--user` (`name`, `uid`, `name:group`, `uid:gid`): who the steps run as instead
    /// of the image's `USER` (no-init path; resolved in the image's own user database).
    public var user: String?

    public init(
        image: String, binds: [GuestBind] = [], hostAliases: [String] = [], ownerPID: Int32? = nil,
        environment: [String: String] = [:], ports: [PortMapping] = [], capabilities: [String] = [],
        hostAddresses: [String: String] = [:], limits: GuestLimits? = nil
    ) {
        self.limits = limits
        self.hostAddresses = hostAddresses
        self.image = image
        self.binds = binds
        self.hostAliases = hostAliases
        self.ownerPID = ownerPID
        self.environment = environment
        self.ports = ports
        self.capabilities = capabilities
    }

    enum CodingKeys: String, CodingKey {
        case image, binds, hostAliases, ownerPID, environment, ports, capabilities, role, entrypoint, arguments
        case hostAddresses, limits, user
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        image = try c.decode(String.self, forKey: .image)
        binds = try c.decodeIfPresent([GuestBind].self, forKey: .binds) ?? []
        hostAliases = try c.decodeIfPresent([String].self, forKey: .hostAliases) ?? []
        ownerPID = try c.decodeIfPresent(Int32.self, forKey: .ownerPID)
        environment = try c.decodeIfPresent([String: String].self, forKey: .environment) ?? [:]
        ports = try c.decodeIfPresent([PortMapping].self, forKey: .ports) ?? []
        capabilities = try c.decodeIfPresent([String].self, forKey: .capabilities) ?? []
        role = try c.decodeIfPresent(GuestRole.self, forKey: .role)
        entrypoint = try c.decodeIfPresent([String].self, forKey: .entrypoint)
        arguments = try c.decodeIfPresent([String].self, forKey: .arguments)
        hostAddresses = try c.decodeIfPresent([String: String].self, forKey: .hostAddresses) ?? [:]
        limits = try c.decodeIfPresent(GuestLimits.self, forKey: .limits)
        user = try c.decodeIfPresent(String.self, forKey: .user)
    }
}
