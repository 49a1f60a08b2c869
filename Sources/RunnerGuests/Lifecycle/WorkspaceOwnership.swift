import CRunnerSystem
import Logging
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Hands files a step created under the work directory back to the runner user.
///
/// Without a user namespace, steps run as host root in the guest, on live binds of the work
/// directory, so whatever they create is root-owned on the host and the next checkout could not
/// delete it (`actions/runner#434`). After each step the helper walks the binds under the work
/// directory and gives every entry not already owned by the owner to them.
///
/// The walk is by descriptor from a directory the caller resolved safely (``TrustedPath``):
/// every entry is opened with `O_NOFOLLOW` relative to its parent's descriptor, symbolic links
/// are changed themselves (`AT_SYMLINK_NOFOLLOW`), never followed. It is iterative with no depth
/// limit: one open descriptor per level (the soft descriptor limit is raised to the hard one);
/// when descriptors run out it stops and reports an incomplete walk rather than skip a level.
/// Regular files it hands over lose their setuid and setgid bits.
public enum WorkspaceOwnership {
    /// What a walk did.
    public struct Counts: Sendable, Hashable {
        /// Entries looked at (the root included).
        public var visited = 0
        /// Entries whose owner (or setuid/setgid bits) changed.
        public var changed = 0
        /// False when the walk stopped early (out of descriptors): some entries were not looked at.
        public var complete = true

        public init() {}

        /// Adds `other`'s counts (incomplete if either is).
        public mutating func add(_ other: Counts) {
            visited += other.visited
            changed += other.changed
            complete = complete && other.complete
        }
    }

    /// Walks the directory `root` and gives every entry not owned by `uid:gid` to them.
    public static func fix(_ root: PathDescriptor, uid: UInt32, gid: UInt32, logger: Logger? = nil) -> Counts {
        var counts = Counts()
        let fd = openat(root.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            logger?.warning("workspace ownership: cannot open the root", metadata: ["root": "\(root.path)"])
            counts.complete = false
            return counts
        }
        raiseDescriptorLimit()
        var st = stat()
        if fstat(fd, &st) == 0 {
            counts.visited = 1
            if st.st_uid != uid || st.st_gid != gid, fchown(fd, uid, gid) == 0 { counts.changed += 1 }
        }
        guard let top = fdopendir(fd) else {
            close(fd)
            counts.complete = false
            return counts
        }
        // The directories being read, outermost first: one descriptor per level.
        var stack: [OpaquePointer] = [top]
        defer { for dir in stack { closedir(dir) } }
        while let dir = stack.last {
            guard let entry = readdir(dir) else {
                closedir(stack.removeLast())
                continue
            }
            let parent = dirfd(dir)
            var name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix(while: { $0 != 0 })).map { CChar(bitPattern: $0) }
            }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            name.append(0)
            var st = stat()
            guard fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            counts.visited += 1
            if (st.st_mode & S_IFMT) == S_IFDIR {
                let child = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else {
                    if errno == EMFILE || errno == ENFILE {
                        logger?.error(
                            "workspace ownership: out of file descriptors, walk stopped",
                            metadata: ["root": "\(root.path)", "depth": "\(stack.count)"])
                        counts.complete = false
                        return counts
                    }
                    continue
                }
                var own = stat()
                if fstat(child, &own) == 0, own.st_uid != uid || own.st_gid != gid, fchown(child, uid, gid) == 0 {
                    counts.changed += 1
                }
                guard let opened = fdopendir(child) else {
                    close(child)
                    continue
                }
                stack.append(opened)
            } else if st.st_uid != uid || st.st_gid != gid {
                if handOver(parent, name, uid: uid, gid: gid) { counts.changed += 1 }
            }
        }
        return counts
    }

    /// Gives the non-directory `name` in `parent` to `uid:gid` by descriptor (`O_PATH |
    /// O_NOFOLLOW`: a link is changed itself), and clears a regular file's setuid/setgid bits.
    private static func handOver(_ parent: Int32, _ name: [CChar], uid: UInt32, gid: UInt32) -> Bool {
        let fd = openat(parent, name, oPath | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        // Replaced by a directory since: the next walk sees it.
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR else { return false }
        guard fchownat(fd, "", uid, gid, Int32(RUNNER_AT_EMPTY_PATH) | AT_SYMLINK_NOFOLLOW) == 0 else { return false }
        if (st.st_mode & S_IFMT) == S_IFREG, fstat(fd, &st) == 0, (st.st_mode & (S_ISUID | S_ISGID)) != 0 {
            // chmod through the descriptor's own inode (an O_PATH descriptor takes no fchmod).
            _ = chmod("/proc/self/fd/\(fd)", st.st_mode & 0o1777)
        }
        return true
    }

    /// Raises the soft descriptor limit to the hard one: the walk holds one per level.
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
