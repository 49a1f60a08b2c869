import CRunnerSystem
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Reading and handing over files in directories the runner user can write (the runner
/// package `/opt/actions-runner`, the work directory, the runner's home), as root, without
/// following anything the runner user planted: directories are opened without following
/// symlinks from a trusted (root-owned) parent, files from that directory's descriptor, and
/// what was opened is checked and used by descriptor.
enum RunnerOwnedFiles {
    /// Largest runner file the installer keeps across a package upgrade (`.runner`,
    /// `.credentials`, … are a few KiB).
    static let keptFileLimit = 1 << 20

    /// Opens the directory `path` without following a symlink at its last component (its parent
    /// must be trusted: root's). Nil when it does not exist; throws when it is not a directory.
    static func openDirectory(_ path: String) throws(RunnerError) -> Int32? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0 { return fd }
        if errno == ENOENT { return nil }
        throw RunnerError(
            .unsafeInput, input: path,
            problem: "is not a directory (or is a symlink): \(String(cString: strerror(errno)))",
            fix: "remove it; the installer makes it again")
    }

    /// Why a runner-owned file is not read.
    struct Refusal: Error, Equatable, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    /// The contents of `name` in the directory `directory`, when it is a regular file (not a
    /// symlink, FIFO, device or directory) owned by `owner` or root, with one link, of at most
    /// `limit` bytes. Nil when it does not exist.
    static func readRegularFile(
        in directory: Int32, _ name: String, owner: uid_t, limit: Int = keptFileLimit
    ) -> Result<[UInt8]?, Refusal> {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            return .failure(Refusal(reason: "is not a plain file name"))
        }
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        if fd < 0 {
            switch errno {
            case ENOENT: return .success(nil)
            case ELOOP: return .failure(Refusal(reason: "is a symlink"))
            default: return .failure(Refusal(reason: "cannot be opened: \(String(cString: strerror(errno)))"))
            }
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(Refusal(reason: "cannot be examined")) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return .failure(Refusal(reason: "is not a regular file")) }
        guard st.st_uid == owner || st.st_uid == 0 else {
            return .failure(Refusal(reason: "is owned by UID \(st.st_uid), not the runner user or root"))
        }
        guard st.st_nlink == 1 else {
            return .failure(Refusal(reason: "has \(st.st_nlink) hard links (a link to another file)"))
        }
        guard st.st_size <= limit else {
            return .failure(Refusal(reason: "is larger than \(limit) bytes"))
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count <= limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return .failure(Refusal(reason: "cannot be read: \(String(cString: strerror(errno)))")) }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        guard bytes.count <= limit else { return .failure(Refusal(reason: "is larger than \(limit) bytes")) }
        return .success(bytes)
    }

    /// Opens the directory at `path` resolving no symlink anywhere in it (`openat2` with
    /// `RESOLVE_NO_SYMLINKS`), then gives it `mode` and `uid:gid` through the descriptor: a
    /// runner-owned parent swapped for a symlink cannot redirect the change. Creates missing
    /// directories first (as root, mode 0755 parents).
    static func handOverDirectory(_ path: String, mode: UInt32, uid: uid_t, gid: gid_t) throws(RunnerError) {
        try FilePaths.createDirectory(path)
        let fd = runner_openat2(
            AT_FDCWD, path, UInt64(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), 0,
            UInt64(RUNNER_RESOLVE_NO_SYMLINKS))
        guard fd >= 0 else {
            throw RunnerError(
                .unsafeInput, input: path,
                problem: "cannot be opened without following a symlink: \(String(cString: strerror(errno)))",
                fix: "make every component of the path a real directory (no symlinks), then install again")
        }
        defer { close(fd) }
        guard fchmod(fd, mode_t(mode)) == 0 else {
            throw RunnerError.posix("could not set the mode of", path, fix: nil)
        }
        guard fchown(fd, uid, gid) == 0 else { throw RunnerError.posix("could not hand over", path, fix: nil) }
    }

    /// Whether `path` is a directory (not a symlink) owned by `uid` with `mode`.
    static func isHandedOver(_ path: String, mode: UInt32, uid: uid_t) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR && UInt32(st.st_mode & 0o7777) == mode
            && st.st_uid == uid
    }
}
