import RunnerCore

/// One host directory bound into a guest.
public struct GuestBind: Sendable, Hashable, Codable {
    /// How the owners of a bind's files appear in a user-namespaced guest.
    public enum OwnerMapping: String, Sendable, Hashable, Codable {
        /// As they are: host UIDs outside the guest's range show as `nobody` in the guest.
        case none
        /// nspawn's `rootidmap` (systemd 252): an idmapped mount on which the owner of the bind
        /// source's top directory is guest root and every other UID is unmapped. What guest root
        /// writes there is owned on the host by that owner (the runner user), so a setuid bit it
        /// sets grants nothing on the host. Guest users other than root cannot create files there.
        ///
        /// It is a property of the mount, decided by ``GuestPolicy`` (never by the caller): a bind
        /// whose source is later replaced by a root-owned staging mount of the same directory
        /// (`open_tree` + `move_mount`) keeps it, since that mount's top directory still has the
        /// source's owner.
        case rootIDMap = "rootidmap"
    }

    /// The host path; nil for an anonymous volume (nspawn makes a temporary directory).
    public var source: String?
    /// The path inside the guest.
    public var target: String
    public var readOnly: Bool
    /// How owners map in a user-namespaced guest (``GuestPolicy/check(_:)`` sets it).
    public var ownerMapping: OwnerMapping = .none

    public init(source: String?, target: String, readOnly: Bool = false, ownerMapping: OwnerMapping = .none) {
        self.source = source
        self.target = target
        self.readOnly = readOnly
        self.ownerMapping = ownerMapping
    }

    enum CodingKeys: String, CodingKey { case source, target, readOnly, ownerMapping }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        source = try c.decodeIfPresent(String.self, forKey: .source)
        target = try c.decode(String.self, forKey: .target)
        readOnly = try c.decodeIfPresent(Bool.self, forKey: .readOnly) ?? false
        ownerMapping = try c.decodeIfPresent(OwnerMapping.self, forKey: .ownerMapping) ?? .none
    }

    /// The `--bind=`/`--bind-ro=` argument: `src:dst[:rootidmap]` (colons escaped as nspawn wants).
    var nspawnArgument: String {
        let flag = readOnly ? "--bind-ro=" : "--bind="
        var argument = flag + Self.escape(source ?? "") + ":" + Self.escape(target)
        if ownerMapping != .none, source != nil { argument += ":" + ownerMapping.rawValue }
        return argument
    }

    static func escape(_ path: String) -> String {
        path.replacing("\\", with: "\\\\").replacing(":", with: "\\:")
    }
}
