import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// The host UID/GID range a user-namespaced guest's IDs map to: guest ID `n` is host ID
/// `base + n` for `n < size`. Guest root is host UID ``base``, an unprivileged user with no
/// passwd entry that owns nothing on the host but the shifted image trees.
///
/// There is one range, ``standard``: the appliance runs one job at a time, and a job's guest and
/// its service guests share the same workspace binds, so they share the range too (guests of one
/// job are not isolated from one another by UIDs; they are from the host). A second concurrent
/// runner on the same host would need a range of its own.
public struct GuestUserNamespace: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The first host ID (guest root).
    public var base: UInt32
    /// How many IDs: 65,536, the full 16-bit range images use.
    public var size: UInt32

    public init(base: UInt32, size: UInt32) {
        self.base = base
        self.size = size
    }

    /// `2147352576:65536` (0x7FFE0000): the top of the range nspawn's `pick` chooses from, far
    /// above any UID a host's users or systemd's dynamic users get.
    public static let standard = GuestUserNamespace(base: 2_147_352_576, size: 65536)

    /// `BASE:SIZE`, as `--private-users=` and the image store's marker write it.
    public var description: String { "\(base):\(size)" }

    /// Parses `BASE:SIZE`.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let base = UInt32(parts[0]), let size = UInt32(parts[1]), size > 0,
            UInt64(base) + UInt64(size) <= UInt64(UInt32.max)
        else { return nil }
        self.init(base: base, size: size)
    }

    /// Whether the kernel lets us create user namespaces (`/proc/sys/user/max_user_namespaces` > 0).
    public static func kernelAllows(procRoot: String = "/proc") -> Bool {
        guard let bytes = try? FilePaths.read(procRoot + "/sys/user/max_user_namespaces"),
            let limit = Int(String(decoding: bytes, as: UTF8.self).trimmedWhitespace)
        else { return false }
        return limit > 0
    }
}
