import CRunnerSystem
import Logging
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The owners of an image version's tree, shifted into the guests' UID range
/// (``GuestUserNamespace``) so nspawn boots it with `--private-users=BASE:SIZE
/// --private-users-ownership=off` and never chowns anything itself.
///
/// The range a version is shifted to is recorded in `<version>/userns` (`BASE:SIZE`); no marker
/// means unshifted (IDs as in the archive). ``ensure(version:userNamespace:logger:)`` brings a
/// version to what the policy wants, once, under an exclusive `flock` on `<version>/.userns.lock`:
/// at import, and again at guest start for a version imported before user namespaces (or after
/// the administrator switched `RUNNER_GUEST_USERNS`). That is safe to do in place because:
/// - the shift maps only IDs inside the old range to the new one, and the ranges do not
///   overlap, so it is idempotent: a shift interrupted half way is completed by the next one;
/// - the marker is written (atomically) only after the whole tree is done;
/// - the tree is root's (the store is root-only), and it is walked by descriptor
///   (`openat`/`fstatat` with `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`), never crossing a mount.
public enum ImageOwnership {
    /// `<version>/userns`: the range the version's rootfs is shifted to.
    public static let markerName = "userns"
    static let lockName = ".userns.lock"

    /// The range `<version>/userns` records; nil for an unshifted version.
    public static func marker(version: String) throws(RunnerError) -> GuestUserNamespace? {
        let path = version + "/" + markerName
        guard FilePaths.exists(path) else { return nil }
        let text = String(decoding: try FilePaths.read(path), as: UTF8.self).trimmedWhitespace
        guard let range = GuestUserNamespace(text) else {
            throw RunnerError(
                .integrity, input: path, problem: "is not BASE:SIZE (\"\(text)\")",
                fix: "remove the image and import it again (runner-agent image remove, then image import)")
        }
        return range
    }

    /// Shifts `<version>/rootfs` to `userNamespace` (nil: unshifted) unless its marker says it is
    /// already there. Returns whether it shifted. `busy` is asked (under the lock) before a shift:
    /// true refuses it (guests still boot from the old owners).
    @discardableResult
    public static func ensure(
        version: String, userNamespace: GuestUserNamespace?, logger: Logger,
        busy: () -> Bool = { false }
    ) throws(RunnerError) -> Bool {
        if try marker(version: version) == userNamespace { return false }
        let lockPath = version + "/" + lockName
        let lock = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw RunnerError.posix("could not open the image lock", lockPath, fix: nil) }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else { throw RunnerError.posix("could not lock", lockPath, fix: nil) }
        }
        // Under the lock, a marker's temporary file is a dead writer's (killed between write and
        // rename): it goes, so a re-run converges on the same tree.
        for name in FilePaths.entries(of: version) where name.hasPrefix("." + markerName + ".tmp-") {
            unlink(version + "/" + name)
        }
        let current = try marker(version: version)
        if current == userNamespace { return false }
        guard !busy() else {
            throw RunnerError(
                .alreadyExists, input: version,
                problem: "image owners must be shifted to \(userNamespace?.description ?? "unshifted") "
                    + "(RUNNER_GUEST_USERNS changed) while guests still run from it",
                fix: "let the running job finish (or `ci-nspawn-run gc --all`), then start again")
        }
        let from = current ?? GuestUserNamespace(base: 0, size: userNamespace?.size ?? 65536)
        let to = userNamespace ?? GuestUserNamespace(base: 0, size: current?.size ?? 65536)
        let started = MonotonicClock.now()
        let changed = try shift(root: version + "/rootfs", from: from, to: to)
        if let userNamespace {
            try AtomicFile.write(userNamespace.description + "\n", to: version + "/" + markerName, mode: 0o644)
        } else if unlink(version + "/" + markerName) != 0, errno != ENOENT {
            throw RunnerError.posix("could not remove the marker", version + "/" + markerName, fix: nil)
        }
        logger.info(
            "shifted image owners",
            metadata: [
                "version": "\(version)", "from": "\(from)", "to": "\(to)", "changed": "\(changed)",
                "seconds": "\(MonotonicClock.now() - started)",
            ])
        return true
    }

    /// Maps every owner and group in `from` to the same offset in `to` (IDs outside `from` stay),
    /// for `root` and everything below it on the same file system. Setuid/setgid modes (which
    /// `chown` clears) and `security.capability` attributes (which it drops) are put back.
    /// Returns how many entries changed.
    @discardableResult
    public static func shift(
        root: String, from: GuestUserNamespace, to: GuestUserNamespace
    ) throws(RunnerError) -> Int {
        guard from.size == to.size,
            UInt64(max(from.base, to.base)) - UInt64(min(from.base, to.base)) >= UInt64(from.size)
        else {
            throw RunnerError(
                .invalidInput, input: "\(from) -> \(to)", problem: "ranges overlap or differ in size",
                fix: "use non-overlapping ranges of the same size")
        }
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw RunnerError.posix("could not open", root, fix: "re-import the image") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw RunnerError.posix("could not stat", root, fix: nil) }
        var walker = Walker(from: from, to: to, device: st.st_dev)
        try walker.entry(fd: fd, st: st, path: root)
        try walker.directory(fd, path: root)
        return walker.changed
    }

    struct Walker {
        let from: GuestUserNamespace
        let to: GuestUserNamespace
        let device: dev_t
        var changed = 0

        init(from: GuestUserNamespace, to: GuestUserNamespace, device: dev_t) {
            self.from = from
            self.to = to
            self.device = device
        }

        func map(_ id: UInt32) -> UInt32 {
            id >= from.base && UInt64(id) < UInt64(from.base) + UInt64(from.size) ? id - from.base + to.base : id
        }

        /// Shifts the object open as `fd` (a directory or a regular file).
        mutating func entry(fd: Int32, st: stat, path: @autoclosure () -> String) throws(RunnerError) {
            let uid = map(st.st_uid)
            let gid = map(st.st_gid)
            guard uid != st.st_uid || gid != st.st_gid else { return }
            let capability = Self.capability(fd)
            guard fchown(fd, uid, gid) == 0 else { throw RunnerError.posix("could not chown", path(), fix: nil) }
            if st.st_mode & (S_ISUID | S_ISGID) != 0, fchmod(fd, st.st_mode & 0o7777) != 0 {
                throw RunnerError.posix("could not restore the mode of", path(), fix: nil)
            }
            if let capability {
                let status = capability.withUnsafeBytes {
                    runner_fsetxattr(fd, "security.capability", $0.baseAddress, $0.count, 0)
                }
                guard status == 0 else {
                    throw RunnerError.posix("could not restore the capabilities of", path(), fix: nil)
                }
            }
            changed += 1
        }

        /// Every entry of the directory open as `dirfd`, depth first.
        mutating func directory(_ dirfd: Int32, path: String) throws(RunnerError) {
            for name in try Self.names(dirfd, path: path) {
                let shown = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                var st = stat()
                guard fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                    if errno == ENOENT { continue }
                    throw RunnerError.posix("could not stat", path + "/" + shown, fix: nil)
                }
                guard st.st_dev == device else { continue }
                let kind = st.st_mode & S_IFMT
                if kind == S_IFDIR || kind == S_IFREG {
                    let flags = kind == S_IFDIR ? O_DIRECTORY : (O_NONBLOCK | O_NOCTTY)
                    let fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags)
                    guard fd >= 0 else { throw RunnerError.posix("could not open", path + "/" + shown, fix: nil) }
                    defer { close(fd) }
                    var opened = stat()
                    guard fstat(fd, &opened) == 0, opened.st_ino == st.st_ino, opened.st_dev == st.st_dev else {
                        throw RunnerError(
                            .integrity, input: path + "/" + shown, problem: "changed while its owners were shifted",
                            fix: "nothing may write the image store; import the image again")
                    }
                    try entry(fd: fd, st: opened, path: path + "/" + shown)
                    if kind == S_IFDIR { try directory(fd, path: path + "/" + shown) }
                } else {
                    let uid = map(st.st_uid)
                    let gid = map(st.st_gid)
                    guard uid != st.st_uid || gid != st.st_gid else { continue }
                    guard fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0 else {
                        throw RunnerError.posix("could not chown", path + "/" + shown, fix: nil)
                    }
                    changed += 1
                }
            }
        }

        /// The entry names of the directory open as `dirfd` (without `.` and `..`).
        static func names(_ dirfd: Int32, path: String) throws(RunnerError) -> [[CChar]] {
            let copy = dup(dirfd)
            guard copy >= 0, let dir = fdopendir(copy) else {
                if copy >= 0 { close(copy) }
                throw RunnerError.posix("could not list", path, fix: nil)
            }
            defer { closedir(dir) }
            var names: [[CChar]] = []
            while let entry = readdir(dir) {
                // Raw bytes, NUL-terminated: names need not be UTF-8.
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    raw.prefix(while: { $0 != 0 }).map { CChar(bitPattern: $0) }
                }
                if name != [46] && name != [46, 46] { names.append(name + [0]) }
            }
            return names
        }

        /// The raw `security.capability` attribute of `fd`, if it has one.
        static func capability(_ fd: Int32) -> [UInt8]? {
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = buffer.withUnsafeMutableBytes {
                runner_fgetxattr(fd, "security.capability", $0.baseAddress, $0.count)
            }
            return n > 0 ? Array(buffer[0..<n]) : nil
        }
    }
}
