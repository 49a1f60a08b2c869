import CRunnerSystem
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// An open descriptor of a file-system object that was resolved without following links a
/// hostile user could plant, and the path it was reached by.
///
/// The path is for messages only: code that holds a `PathDescriptor` uses the object through
/// ``fd`` (`openat`, `fstat`, `open_tree`, …) and never opens the path again by name. The
/// descriptor is usually `O_PATH`; it is closed when the last reference goes.
public final class PathDescriptor: Sendable {
    /// The descriptor (`O_CLOEXEC`).
    public let fd: Int32
    /// How the object was reached, for messages.
    public let path: String

    /// Takes ownership of `fd`.
    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// `fstat(2)` of the object, or nil when it fails.
    public func status() -> stat? {
        var st = stat()
        return fstat(fd, &st) == 0 ? st : nil
    }

    /// Whether the object is a directory.
    public var isDirectory: Bool { status().map { ($0.st_mode & S_IFMT) == S_IFDIR } ?? false }

    /// Reads the whole file from the current offset (a descriptor opened for reading, e.g. by
    /// ``TrustedPath/openRegularFile(_:beneath:owner:)``); more than `limit` bytes is an error.
    public func readAll(limit: Int = 16 << 20) throws(RunnerError) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw RunnerError.posix("cannot read", path, fix: nil) }
            if count == 0 { return bytes }
            bytes += buffer[0..<count]
            guard bytes.count <= limit else {
                throw RunnerError(.unsafeInput, input: path, problem: "is larger than \(limit) bytes")
            }
        }
    }

    /// The object's path as the kernel names it now (`/proc/self/fd/N`), or nil. For
    /// comparisons and messages; never to be opened.
    public var currentPath: String? { SymbolicLink.target("/proc/self/fd/\(fd)") }
}

/// Resolving paths from trusted directory descriptors, never following a link a hostile user
/// (the runner user, or root in a guest without a user namespace) could plant.
///
/// Two steps:
/// - ``openAnchor(_:layout:)`` opens a directory the administrator named (the work directory,
///   externals, a `RUNNER_GUEST_MOUNT_ALLOW` entry) from the layout root, one component at a
///   time with `O_NOFOLLOW`. A symbolic link is followed only when it sits in a *trusted*
///   directory (owned by root or by us, writable by no one else, and reached only through
///   trusted directories), so an admin's `/var/run → /run` works while a link the runner user
///   made in a directory it owns is refused.
/// - ``resolve(_:beneath:directory:)`` resolves a caller's relative path below an anchor with
///   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`: any symbolic
///   link, `..` or escape is a refusal naming the path.
///
/// ``createDirectories(_:beneath:mode:)`` creates missing directories the same way
/// (`mkdirat` + `openat(O_NOFOLLOW)` one component at a time).
public enum TrustedPath {
    /// How many symbolic links in trusted directories ``openAnchor(_:layout:)`` follows.
    static let maximumLinks = 40

    /// Whether `uid` may own a directory we trust: root, or the user we run as (tests).
    static func isTrustedOwner(_ uid: UInt32) -> Bool { uid == 0 || uid == geteuid() }

    /// Whether a directory with status `st` can only be changed by trusted users: trusted owner,
    /// not writable by others (unless sticky) nor by a group other than root's.
    package static func isTrustedDirectory(_ st: stat) -> Bool {
        guard (st.st_mode & S_IFMT) == S_IFDIR, isTrustedOwner(st.st_uid) else { return false }
        let sticky = (st.st_mode & S_ISVTX) != 0
        if (st.st_mode & S_IWOTH) != 0, !sticky { return false }
        if (st.st_mode & S_IWGRP) != 0, st.st_gid != 0, !sticky { return false }
        return true
    }

    /// Opens `path` (absolute, at or under `layout.root`) as an anchor: an `O_PATH` descriptor
    /// reached from the layout root without following a link outside trusted directories.
    /// The last component may be anything (a runner-owned directory, a socket); it is opened
    /// with `O_NOFOLLOW` unless its directory is trusted.
    public static func openAnchor(_ path: String, layout: HostLayout) throws(RunnerError) -> PathDescriptor {
        guard path.hasPrefix("/"), !path.contains("\0") else {
            throw RunnerError(.invalidInput, input: path, problem: "is not an absolute path")
        }
        let root = layout.root
        let relative: Substring
        if root == "/" {
            relative = path.dropFirst()
        } else if path == root {
            relative = ""
        } else if path.hasPrefix(root + "/") {
            relative = path.dropFirst(root.count + 1)
        } else {
            throw RunnerError(
                .invalidInput, input: path, problem: "is not under the host root \(root)",
                fix: "use a path under \(root)")
        }
        let rootFD = open(root, oPath | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw RunnerError.posix("cannot open the host root", root, fix: nil) }
        // The walked directories: descriptor, path, trusted. The first is the layout root,
        // which we trust as given (the administrator's, or the test's).
        var stack: [(fd: Int32, path: String, trusted: Bool)] = []
        defer { for entry in stack { close(entry.fd) } }
        var rootStatus = stat()
        fstat(rootFD, &rootStatus)
        stack.append((rootFD, root, isTrustedDirectory(rootStatus)))
        var pending = relative.split(separator: "/").map(String.init)
        var links = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component == "." || component.isEmpty { continue }
            let current = stack[stack.count - 1]
            if component == ".." {
                // Only a link's target in a trusted directory brings `..` here (the caller's
                // path is checked lexically by callers); never above the layout root.
                guard current.trusted else {
                    throw RunnerError(
                        .unsafeInput, input: path, problem: "goes up (`..`) out of a directory others can write",
                        fix: "name the directory without `..`")
                }
                if stack.count > 1 { close(stack.removeLast().fd) }
                continue
            }
            let here = (current.path == "/" ? "" : current.path) + "/" + component
            let fd = openat(current.fd, component, oPath | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else {
                let code: RunnerError.Code = errno == ENOENT ? .notFound : .io
                throw RunnerError(
                    code, input: path, problem: "cannot open \(here): \(String(cString: strerror(errno)))")
            }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                close(fd)
                throw RunnerError.posix("cannot stat", here, fix: nil)
            }
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                let target = SymbolicLink.target(fd: current.fd, name: component)
                close(fd)
                guard current.trusted, isTrustedOwner(st.st_uid), let target, !target.isEmpty else {
                    throw RunnerError(
                        .unsafeInput, input: path,
                        problem: "\(here) is a symbolic link in a directory others can write (it is not followed)",
                        fix: "name the real directory (a path without symbolic links in directories others own)")
                }
                links += 1
                guard links <= maximumLinks else {
                    throw RunnerError(.unsafeInput, input: path, problem: "has too many levels of symbolic links")
                }
                if target.hasPrefix("/") {
                    // Absolute targets are taken from the layout root (the real root on a host).
                    while stack.count > 1 { close(stack.removeLast().fd) }
                }
                pending = target.split(separator: "/").map(String.init) + pending
            case S_IFDIR:
                stack.append((fd, here, current.trusted && isTrustedDirectory(st)))
            default:
                guard pending.allSatisfy({ $0 == "." || $0.isEmpty }) else {
                    close(fd)
                    throw RunnerError(
                        .invalidInput, input: path, problem: "\(here) is not a directory",
                        fix: "name a directory")
                }
                return PathDescriptor(fd: fd, path: path)
            }
        }
        // The directory itself: hand over its descriptor (the stack keeps the others).
        let last = stack.removeLast()
        return PathDescriptor(fd: last.fd, path: path)
    }

    /// The components of a caller's relative path, refusing `..` and NUL (`.` and empty
    /// components are dropped).
    package static func components(_ relative: String, input: String) throws(RunnerError) -> [Substring] {
        guard !relative.contains("\0") else {
            throw RunnerError(.invalidInput, input: input, problem: "contains a NUL byte")
        }
        let parts = relative.split(separator: "/").filter { $0 != "." }
        guard !parts.contains("..") else {
            throw RunnerError(
                .invalidInput, input: input, problem: "has a `..` component",
                fix: "name the directory directly, without `..`")
        }
        return parts
    }

    /// Opens `relative` (a caller's path below `anchor`) with `openat2(O_PATH,
    /// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`: an `O_PATH` descriptor
    /// of exactly the object the name reached, or a refusal naming the path when a component
    /// is a symbolic link, goes up or out, or (with `directory`) the object is not a directory.
    /// An empty `relative` reopens the anchor itself.
    public static func resolve(
        _ relative: String, beneath anchor: PathDescriptor, directory: Bool = false
    ) throws(RunnerError) -> PathDescriptor {
        let display = relative.isEmpty ? anchor.path : anchor.path + "/" + relative
        let parts = try components(relative, input: display)
        if parts.isEmpty {
            // The anchor itself (which may be a socket or a file: no "." below it).
            guard !directory || anchor.isDirectory else {
                throw resolveError(ENOTDIR, display: display, anchor: anchor.path, directory: true)
            }
            let fd = fcntl(anchor.fd, F_DUPFD_CLOEXEC, 0)
            guard fd >= 0 else { throw RunnerError.posix("cannot duplicate the descriptor", display, fix: nil) }
            return PathDescriptor(fd: fd, path: display)
        }
        let name = parts.joined(separator: "/")
        var flags = UInt64(oPath | O_CLOEXEC)
        if directory { flags |= UInt64(O_DIRECTORY) }
        let resolve = UInt64(RUNNER_RESOLVE_BENEATH | RUNNER_RESOLVE_NO_SYMLINKS | RUNNER_RESOLVE_NO_MAGICLINKS)
        var fd: Int32 = -1
        // EAGAIN: a rename elsewhere on the file system raced the lookup; try again.
        for _ in 0..<16 {
            fd = runner_openat2(anchor.fd, name, flags, 0, resolve)
            if fd >= 0 || errno != EAGAIN { break }
        }
        guard fd >= 0 else { throw resolveError(errno, display: display, anchor: anchor.path, directory: directory) }
        return PathDescriptor(fd: fd, path: display)
    }

    /// Opens the regular file `relative` below `anchor` for reading. It is resolved as
    /// ``resolve(_:beneath:directory:)`` does (no link followed), checked to be a regular file —
    /// and owned by `owner`, when given — and only then opened for reading through its own
    /// descriptor, so a FIFO or device node planted under the name is never opened.
    public static func openRegularFile(
        _ relative: String, beneath anchor: PathDescriptor, owner: UInt32? = nil
    ) throws(RunnerError) -> PathDescriptor {
        let path = try resolve(relative, beneath: anchor)
        guard let st = path.status(), (st.st_mode & S_IFMT) == S_IFREG else {
            throw RunnerError(
                .unsafeInput, input: path.path, problem: "is not a regular file",
                fix: "replace it with a regular file")
        }
        if let owner, st.st_uid != owner {
            throw RunnerError(
                .unsafeInput, input: path.path, problem: "is owned by uid \(st.st_uid), not \(owner)",
                fix: "give it to uid \(owner), or remove it")
        }
        // The same inode, reopened through its descriptor's magic link (no lookup by name).
        let fd = open("/proc/self/fd/\(path.fd)", O_RDONLY | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { throw RunnerError.posix("cannot open for reading", path.path, fix: nil) }
        return PathDescriptor(fd: fd, path: path.path)
    }

    /// The refusal for an `openat2` failure.
    static func resolveError(_ code: Int32, display: String, anchor: String, directory: Bool) -> RunnerError {
        switch code {
        case ELOOP:
            return RunnerError(
                .unsafeInput, input: display,
                problem: "is reached through a symbolic link (links under \(anchor) are not followed)",
                fix: "name the real directory, without symbolic links")
        case EXDEV:
            return RunnerError(
                .unsafeInput, input: display, problem: "leads out of \(anchor)",
                fix: "name a path inside \(anchor)")
        case ENOENT:
            return RunnerError(
                .notFound, input: display, problem: "does not exist", fix: "create it inside \(anchor)")
        case ENOTDIR:
            return RunnerError(
                .invalidInput, input: display,
                problem: directory ? "is not a directory" : "has a component that is not a directory",
                fix: "name a directory")
        case ENOSYS:
            return RunnerError(
                .unsupported, input: display, problem: "the kernel has no openat2(2) (Linux 5.6 or later needed)",
                fix: "run the runner on a newer kernel")
        default:
            return RunnerError(
                .io, input: display, problem: "cannot be opened: \(String(cString: strerror(code)))")
        }
    }

    /// Creates the missing directories of `relative` below `anchor`, one component at a time
    /// (`mkdirat`, then `openat(O_DIRECTORY | O_NOFOLLOW)`), and returns the last one. A
    /// component that is a symbolic link or not a directory is a refusal naming it.
    @discardableResult
    public static func createDirectories(
        _ relative: String, beneath anchor: PathDescriptor, mode: mode_t = 0o755
    ) throws(RunnerError) -> PathDescriptor {
        let parts = try components(relative, input: anchor.path + "/" + relative)
        var current = try resolve("", beneath: anchor, directory: true)
        var walked = anchor.path
        for part in parts {
            let name = String(part)
            walked += "/" + name
            var fd: Int32 = -1
            for _ in 0..<8 {
                fd = openat(current.fd, name, oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd >= 0 || errno != ENOENT { break }
                if mkdirat(current.fd, name, mode) != 0, errno != EEXIST {
                    throw RunnerError.posix("cannot create the directory", walked, fix: nil)
                }
            }
            guard fd >= 0 else {
                if errno == ELOOP || errno == ENOTDIR {
                    throw RunnerError(
                        .unsafeInput, input: walked,
                        problem: "is a symbolic link or not a directory (it is not followed)",
                        fix: "remove it, or name the real directory")
                }
                throw RunnerError.posix("cannot open the directory", walked, fix: nil)
            }
            current = PathDescriptor(fd: fd, path: walked)
        }
        return current
    }

    /// Whether the directory `descriptor` is `ancestor` or lies below it, found by walking
    /// `..` up to the file system's root (at most 4096 levels).
    public static func isBeneath(_ descriptor: PathDescriptor, _ ancestor: PathDescriptor) -> Bool {
        guard let target = ancestor.status() else { return false }
        var current = Glibc.dup(descriptor.fd)
        guard current >= 0 else { return false }
        defer { close(current) }
        for _ in 0..<4096 {
            var st = stat()
            guard fstat(current, &st) == 0 else { return false }
            if st.st_dev == target.st_dev, st.st_ino == target.st_ino { return true }
            let parent = openat(current, "..", oPath | O_DIRECTORY | O_CLOEXEC)
            guard parent >= 0 else { return false }
            var up = stat()
            fstat(parent, &up)
            close(current)
            current = parent
            if up.st_dev == st.st_dev, up.st_ino == st.st_ino { return false }
        }
        return false
    }
}

/// `O_PATH` (a GNU flag Swift's Glibc module does not import).
package let oPath = Int32(RUNNER_O_PATH)
