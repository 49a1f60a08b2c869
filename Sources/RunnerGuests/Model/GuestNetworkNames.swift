import RunnerCore

/// The names of the host objects the runner owns for private networks, derived from the host
/// layout: the defaults (`inet runner`, `rn-<id>`) on a host, names with a tag of the layout's
/// root in tests (each test root gets its own, so concurrent runs never share or remove each
/// other's tables and bridges).
public struct GuestNetworkNames: Sendable, Hashable {
    /// The runner's filter table (family `inet`).
    public var table: String
    /// What every job bridge's name starts with (`rn-`); names stay within 15 characters.
    public var bridgePrefix: String

    public init(table: String = "runner", bridgePrefix: String = "rn-") {
        self.table = table
        self.bridgePrefix = bridgePrefix
    }

    /// The names for `layout`: the defaults for `/`, else tagged with 4 hex digits of the root.
    public init(layout: HostLayout) {
        guard layout.root != "/" && !layout.root.isEmpty else {
            self.init()
            return
        }
        let tag = String(Self.hash(layout.root) & 0xffff, radix: 16).leftPadded(to: 4)
        self.init(table: "runner-" + tag, bridgePrefix: "rn" + tag + "-")
    }

    /// The bridge of job `id`.
    public func bridge(_ id: String) -> String { bridgePrefix + id }
    /// The nat table (family `ip`) of job `id`: masquerade and published ports.
    public func jobTable(_ id: String) -> String { table + "-job-" + id }

    /// The job id of one of our bridges, or nil for another name.
    public func jobID(bridge name: String) -> String? {
        guard name.hasPrefix(bridgePrefix) else { return nil }
        let id = String(name.dropFirst(bridgePrefix.count))
        return Self.isJobID(id) ? id : nil
    }

    /// The job id of one of our job tables, or nil for another name.
    public func jobID(table name: String) -> String? {
        let prefix = table + "-job-"
        guard name.hasPrefix(prefix) else { return nil }
        let id = String(name.dropFirst(prefix.count))
        return Self.isJobID(id) ? id : nil
    }

    /// A job's network id: 8 hex digits of its owner's PID and start time (the same job gives the
    /// same id to its service guests and its job guest).
    public static func jobID(ownerPID: Int32, startTime: UInt64?) -> String {
        String(hash("\(ownerPID)/\(startTime ?? 0)"), radix: 16).leftPadded(to: 8)
    }

    static func isJobID(_ id: String) -> Bool {
        id.count == 8 && id.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    /// FNV-1a, 32 bits.
    static func hash(_ text: String) -> UInt32 {
        var value: UInt32 = 2_166_136_261
        for byte in text.utf8 {
            value ^= UInt32(byte)
            value = value &* 16_777_619
        }
        return value
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
