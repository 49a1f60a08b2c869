import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Writes files so that a reader sees either the old content or the new, never half of it:
/// a temporary file beside the target, fsync, then rename.
public enum AtomicFile {
    /// Writes `bytes` to `path` with `mode`, atomically. Creates missing parent directories
    /// (0755) when `createDirectories` is true. With `durable` false the data is not synced
    /// before the rename (still atomic for readers; after a power cut the file may be empty):
    /// for bookkeeping a crash makes stale anyway, where an fsync on a busy disk costs a job
    /// tens of milliseconds.
    public static func write(
        _ bytes: some Collection<UInt8>,
        to path: String,
        mode: UInt32 = 0o644,
        createDirectories: Bool = true,
        durable: Bool = true
    ) throws(RunnerError) {
        let directory = FilePaths.parent(of: path)
        if createDirectories {
            try FilePaths.createDirectory(directory)
        }
        let temporary = FilePaths.temporarySibling(of: path)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else {
            throw RunnerError.posix(
                "could not create", temporary, fix: "check that \(directory) exists and is writable")
        }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(temporary) }
        }
        let array = Array(bytes)
        var written = 0
        while written < array.count {
            let n = array.withUnsafeBytes { raw in
                Glibc.write(fd, raw.baseAddress?.advanced(by: written), raw.count - written)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw RunnerError.posix("could not write", temporary, fix: "check free space on \(directory)")
            }
            written += n
        }
        // The umask may have narrowed the mode given to open(2).
        guard fchmod(fd, mode_t(mode)) == 0, !durable || fsync(fd) == 0 else {
            throw RunnerError.posix("could not finish", temporary, fix: nil)
        }
        guard rename(temporary, path) == 0 else {
            throw RunnerError.posix("could not rename into place", path, fix: "check that \(directory) is writable")
        }
        ok = true
    }

    /// Writes a UTF-8 string atomically.
    public static func write(_ text: String, to path: String, mode: UInt32 = 0o644) throws(RunnerError) {
        try write(Array(text.utf8), to: path, mode: mode)
    }
}

/// Small path and directory helpers shared by every module.
public enum FilePaths {
    /// The parent directory of `path` ("/" for top-level entries, "." for bare names).
    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// The last component of `path`.
    public static func basename(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// A unique name in the same directory as `path`, for temp-then-rename writes.
    public static func temporarySibling(of path: String) -> String {
        let directory = parent(of: path)
        let name = basename(path)
        return "\(directory)/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Creates `path` and its missing parents with `mode`; succeeds when it already exists.
    public static func createDirectory(_ path: String, mode: UInt32 = 0o755) throws(RunnerError) {
        var isDirectory = false
        if exists(path, isDirectory: &isDirectory) {
            guard isDirectory else {
                throw RunnerError(
                    .alreadyExists, input: path, problem: "exists and is not a directory",
                    fix: "move it out of the way")
            }
            return
        }
        let parentPath = parent(of: path)
        if parentPath != path && parentPath != "." {
            try createDirectory(parentPath, mode: mode)
        }
        if mkdir(path, mode_t(mode)) != 0 && errno != EEXIST {
            throw RunnerError.posix("could not create directory", path, fix: "check permissions on \(parentPath)")
        }
    }

    /// Whether `path` exists (without following a final symlink), and whether it is a directory.
    public static func exists(_ path: String, isDirectory: inout Bool) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else { return false }
        isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        return true
    }

    /// Whether anything (file, directory, symlink) exists at `path`.
    public static func exists(_ path: String) -> Bool {
        var isDirectory = false
        return exists(path, isDirectory: &isDirectory)
    }

    /// The names in directory `path` (hidden ones included, `.` and `..` not), sorted bytewise;
    /// empty when it cannot be read.
    public static func entries(of path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            // d_name is NUL-terminated; String(cString:) stays out of generic code (a listing of
            // a cgroup directory has dozens of entries, on every hook call).
            let name = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Reads a whole file, to EOF: also the files of `/proc`, which report a size of 0 (Foundation's
    /// `Data(contentsOf:)` stops after their first page, and `/proc/self/mountinfo` is longer).
    public static func read(_ path: String) throws(RunnerError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw RunnerError.posix("open", path, fix: "check that it exists and is readable")
        }
        defer { close(fd) }
        return try read(descriptor: fd, path: path)
    }

    /// Reads the open file `fd` from where it stands to EOF (the descriptor stays open); `path`
    /// names it in errors.
    public static func read(descriptor fd: Int32, path: String) throws(RunnerError) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw RunnerError.posix("read", path, fix: "check that it is a readable file") }
            if n == 0 { return bytes }
            bytes.append(contentsOf: buffer[0..<n])
        }
    }

    /// Removes `path` recursively; succeeds when it does not exist.
    public static func remove(_ path: String) throws(RunnerError) {
        guard exists(path) else { return }
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw RunnerError(
                .io, input: path, problem: "could not remove", fix: "check permissions", underlying: error)
        }
    }
}

extension RunnerError {
    /// An error from a failed system call, with `errno`'s text.
    public static func posix(_ what: String, _ path: String, fix: String?) -> RunnerError {
        let reason = String(cString: strerror(errno))
        return RunnerError(.io, input: path, problem: "\(what): \(reason)", fix: fix)
    }
}
