import CRunnerSystem
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Reading a small file of an image's tree (`/etc/passwd`, `/etc/os-release`) on the host
/// without trusting the tree: a registry image is anyone's. The name is resolved below the
/// tree's root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`, so
/// a symbolic link anywhere on it (`/etc/passwd → /etc/shadow` of the host) is refused rather
/// than followed; only a regular file is opened (never a FIFO or a device that would block or
/// act), through its own descriptor, and at most `limit` bytes are read.
public enum GuestTreeFile {
    /// The bytes of `relative` below `rootfs`, or a refusal naming the path and why.
    public static func read(_ relative: String, in rootfs: String, limit: Int = 1 << 20) throws(RunnerError) -> [UInt8]
    {
        let fd = open(rootfs, oPath | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw RunnerError.posix("cannot open the image tree", rootfs, fix: nil) }
        let anchor = PathDescriptor(fd: fd, path: rootfs)
        let file = try TrustedPath.openRegularFile(relative, beneath: anchor)
        return try file.readAll(limit: limit)
    }

    /// ``read(_:in:limit:)`` as text, or nil when the file is missing, a link, not a regular
    /// file, too large or unreadable.
    public static func text(_ relative: String, in rootfs: String, limit: Int = 1 << 20) -> String? {
        guard let bytes = try? read(relative, in: rootfs, limit: limit) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether the tree is Alpine: `ID=alpine` in `/etc/os-release`, else in
    /// `/usr/lib/os-release` (read as above: a link is not followed, so a Debian-style
    /// `/etc/os-release → ../usr/lib/os-release` is answered by the second).
    public static func isAlpine(rootfs: String) -> Bool {
        for file in ["etc/os-release", "usr/lib/os-release"] {
            guard let text = text(file, in: rootfs, limit: 64 << 10) else { continue }
            return text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).contains {
                $0 == "ID=alpine" || $0 == "ID=\"alpine\"" || $0 == "ID='alpine'"
            }
        }
        return false
    }

    /// Whether `relative` names an executable regular file in the tree as the guest would see
    /// it: links are followed inside the tree only (`RESOLVE_IN_ROOT`: an absolute link starts
    /// at the tree's root, `..` stops there), so `/sbin/init → /lib/systemd/systemd` answers
    /// for the tree's own systemd, never for the host's. Nothing is opened for reading.
    public static func isExecutable(_ relative: String, in rootfs: String) -> Bool {
        let root = open(rootfs, oPath | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard root >= 0 else { return false }
        defer { close(root) }
        let resolve = UInt64(RUNNER_RESOLVE_IN_ROOT | RUNNER_RESOLVE_NO_MAGICLINKS)
        let fd = runner_openat2(root, relative, UInt64(oPath | O_CLOEXEC), 0, resolve)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        return (st.st_mode & S_IFMT) == S_IFREG && (st.st_mode & 0o111) != 0
    }

    /// Whether the tree boots systemd (`/usr/lib/systemd/systemd` or `/lib/systemd/systemd`,
    /// links resolved inside the tree): such a tree boots with `-b` as baked images do; any
    /// other (a registry image without an init, or with a `/sbin/init` that is not systemd)
    /// runs under nspawn's stub init (`--as-pid2`).
    public static func bootsSystemd(rootfs: String) -> Bool {
        ["usr/lib/systemd/systemd", "lib/systemd/systemd"].contains { isExecutable($0, in: rootfs) }
    }
}
