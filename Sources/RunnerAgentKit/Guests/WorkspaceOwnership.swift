import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Hands files a step created under the work directory back to the runner user.
///
/// Steps run as root in the guest, on live binds of the work directory, so whatever they create
/// is root-owned on the host and the next checkout could not delete it (`actions/runner#434`).
/// After each step the helper walks the binds under the work directory and `lchown`s every entry
/// not already owned by the owner. The walk never follows symlinks (`openat` with `O_NOFOLLOW`,
/// `fchownat` with `AT_SYMLINK_NOFOLLOW`), so links a job plants cannot redirect it.
public enum WorkspaceOwnership {
    /// Walks `root` and gives every entry not owned by `uid:gid` to them. Returns how many
    /// entries were looked at and how many changed.
    public static func fix(root: String, uid: UInt32, gid: UInt32) -> (visited: Int, changed: Int) {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return (0, 0) }
        var counts = (visited: 1, changed: 0)
        var st = stat()
        if fstat(fd, &st) == 0, st.st_uid != uid || st.st_gid != gid {
            if fchown(fd, uid, gid) == 0 { counts.changed += 1 }
        }
        walk(fd, uid: uid, gid: gid, counts: &counts, depth: 0)
        return counts
    }

    /// Walks the directory open at `fd` (and closes it).
    private static func walk(
        _ fd: Int32, uid: UInt32, gid: UInt32, counts: inout (visited: Int, changed: Int), depth: Int
    ) {
        guard let dir = fdopendir(fd) else {
            close(fd)
            return
        }
        defer { closedir(dir) }
        guard depth < 256 else { return }
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                raw[0] == 0x2e && (raw[1] == 0 || (raw[1] == 0x2e && raw[2] == 0))
            }
            if isDot { continue }
            withUnsafeBytes(of: entry.pointee.d_name) { raw in
                let name = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                var st = stat()
                guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
                counts.visited += 1
                if st.st_uid != uid || st.st_gid != gid {
                    if fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0 { counts.changed += 1 }
                }
                if (st.st_mode & S_IFMT) == S_IFDIR {
                    let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if child >= 0 { walk(child, uid: uid, gid: gid, counts: &counts, depth: depth + 1) }
                }
            }
        }
    }
}
