import FoundationEssentials
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// File operations of the installer that converge: each writes only when the host differs.
enum HostFiles {
    /// The sudoers rule the installer writes and doctor looks for: `user` may run the guest
    /// helper as root (any arguments: the helper trusts no caller) and nothing else.
    static func sudoersRule(user: String) -> String {
        "\(user) ALL=(root) NOPASSWD: \(Installer.hostGuestHelper)"
    }

    /// The whole of `/etc/sudoers.d/runner`.
    static func sudoers(user: String) -> String {
        "# runner appliance: the runner user may run the guest helper as root, and nothing else.\n"
            + sudoersRule(user: user) + "\n"
    }

    /// Whether `path` is a regular file with exactly `bytes` and `mode`.
    static func matches(_ path: String, bytes: [UInt8], mode: UInt32) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, UInt32(st.st_mode & 0o7777) == mode else {
            return false
        }
        return (try? FilePaths.read(path)) == bytes
    }

    /// Writes `bytes` to `path` (atomically) unless it already holds them with `mode`.
    static func install(_ bytes: [UInt8], to path: String, mode: UInt32) throws(RunnerError) {
        guard !matches(path, bytes: bytes, mode: mode) else { return }
        try AtomicFile.write(bytes, to: path, mode: mode)
    }

    /// Makes `path` a symlink to `target`, replacing whatever is there with one rename.
    static func symlink(_ path: String, to target: String) throws(RunnerError) {
        guard SymbolicLink.target(path) != target else { return }
        try FilePaths.createDirectory(FilePaths.parent(of: path))
        let temporary = FilePaths.temporarySibling(of: path)
        guard Glibc.symlink(target, temporary) == 0 else {
            throw RunnerError.posix("could not create a symlink", temporary, fix: nil)
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw RunnerError.posix("could not move a symlink into place", path, fix: nil)
        }
    }

    /// Removes what a killed run left in `directory`: `AtomicFile` temporaries
    /// (`.NAME.tmp-…`) and extraction staging directories (`.NAME.extract-…`).
    static func sweepLeftovers(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".") && (name.contains(".tmp-") || name.contains(".extract-")) {
            try? FilePaths.remove(directory + "/" + name)
        }
    }

    /// Whether `path` is a directory with `mode`.
    static func isDirectory(_ path: String, mode: UInt32) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR && UInt32(st.st_mode & 0o7777) == mode
    }

    /// Creates `path` (and parents) and sets its mode.
    static func directory(_ path: String, mode: UInt32) throws(RunnerError) {
        try FilePaths.createDirectory(path)
        guard chmod(path, mode_t(mode)) == 0 else {
            throw RunnerError.posix("could not set the mode of", path, fix: nil)
        }
    }
}

/// Users from `<root>/etc/passwd` (the installer's view, which works in a temporary root).
struct PasswdFile {
    struct Entry: Equatable {
        var name: String
        var uid: UInt32
        var gid: UInt32
        var home: String
    }

    /// Removes shadow-utils lock files (`/etc/passwd.lock`, …) left by a useradd that was
    /// killed: each holds its owner's pid, and a lock whose owner is gone blocks every later
    /// useradd.
    static func clearStaleLocks(layout: HostLayout) {
        let etc = layout.path("/etc")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: etc)) ?? []
        for base in ["passwd", "group", "shadow", "gshadow", "subuid", "subgid"] {
            let lock = "\(etc)/\(base).lock"
            if let bytes = try? FilePaths.read(lock) {
                let text = String(decoding: bytes.filter { $0 != 0 }, as: UTF8.self).trimmedWhitespace
                guard let pid = pid_t(text), pid > 0, !isAlive(pid) else { continue }
                unlink(lock)
            }
            // With no live holder, its scratch files (`passwd.<pid>`, `passwd+`) are leftovers too.
            for name in names
            where name == base + "+"
                || (name.hasPrefix(base + ".") && name.dropFirst(base.count + 1).allSatisfy(\.isNumber)
                    && name.count > base.count + 1)
            {
                unlink("\(etc)/\(name)")
            }
        }
    }

    /// Whether `pid` runs (a zombie, killed and not yet reaped, does not).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let bytes = try? FilePaths.read("/proc/\(pid)/stat") else { return true }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return true }
        let state = text[text.index(after: close)...].split(separator: " ").first
        return state != "Z" && state != "X"
    }

    /// The user database files, and whether each has an entry called `name`.
    static func entries(of name: String, layout: HostLayout) -> [String: Bool] {
        var found: [String: Bool] = [:]
        for base in ["passwd", "group", "shadow", "gshadow"] {
            let bytes = (try? FilePaths.read(layout.path("/etc/\(base)"))) ?? []
            found[base] = String(decoding: bytes, as: UTF8.self).split(separator: "\n").contains {
                $0.hasPrefix(name + ":")
            }
        }
        return found
    }

    /// Whether a lock file of the user database exists (a live useradd, or a killed one).
    static func hasLocks(layout: HostLayout) -> Bool {
        ["passwd", "group", "shadow", "gshadow"].contains { FilePaths.exists(layout.path("/etc/\($0).lock")) }
    }

    /// Removes `name`'s lines from the four user database files (keeping their modes and
    /// owners): the repair for a useradd killed between writing one file and the next.
    static func removeEntries(of name: String, layout: HostLayout) throws(RunnerError) {
        for base in ["passwd", "group", "shadow", "gshadow"] {
            let path = layout.path("/etc/\(base)")
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            let text = String(decoding: try FilePaths.read(path), as: UTF8.self)
            let kept = text.split(separator: "\n", omittingEmptySubsequences: false).filter {
                !$0.hasPrefix(name + ":")
            }
            let updated = kept.joined(separator: "\n")
            guard updated != text else { continue }
            try AtomicFile.write(updated, to: path, mode: UInt32(st.st_mode & 0o7777))
            guard chown(path, st.st_uid, st.st_gid) == 0 else {
                throw RunnerError.posix("could not restore the owner of", path, fix: nil)
            }
        }
    }

    /// Whether `<root>/etc/group` has a group called `name`.
    static func hasGroup(_ name: String, layout: HostLayout) -> Bool {
        guard let bytes = try? FilePaths.read(layout.path("/etc/group")) else { return false }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").contains { $0.hasPrefix(name + ":") }
    }

    static func lookup(_ name: String, layout: HostLayout) -> Entry? {
        guard let bytes = try? FilePaths.read(layout.path("/etc/passwd")) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 7, fields[0] == name, let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) else {
                continue
            }
            return Entry(name: name, uid: uid, gid: gid, home: String(fields[5]))
        }
        return nil
    }
}
