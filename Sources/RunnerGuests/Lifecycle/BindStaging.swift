import CRunnerSystem
import Logging
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Bind sources mounted from the checked descriptor onto root-owned staging entries.
///
/// `GuestPolicy.check` opens each source from a trusted anchor without following links; the
/// descriptor is cloned with `open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)`, made `nosuid,nodev`
/// (and read-only for read-only binds) with `mount_setattr`, and attached with `move_mount` onto
/// `/run/runner/guests/<name>.binds/<index>`, which nspawn then binds. Renaming or replacing
/// the caller's path after the check changes nothing: the mount is of the checked object.
package enum BindStaging {
    /// Mounts `bind`'s checked object on its staging entry and returns the staging path.
    static func stage(_ bind: CheckedBind, index: Int, guest: String, layout: HostLayout) throws(RunnerError)
        -> StagedBind
    {
        guard let source = bind.descriptor, let status = source.status() else {
            throw RunnerError(.internal, input: bind.bind.source ?? "", problem: "bind source was not checked")
        }
        let isDirectory = (status.st_mode & S_IFMT) == S_IFDIR
        let binds = try bindsDirectory(guest: guest, layout: layout)
        let entry = "\(index)"
        let staging = layout.guestBindStaging(guest, index: index)
        if isDirectory {
            guard mkdirat(binds.fd, entry, 0o700) == 0 else {
                throw RunnerError.posix("cannot create the staging directory", staging, fix: nil)
            }
        } else {
            let fd = openat(binds.fd, entry, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw RunnerError.posix("cannot create the staging file", staging, fix: nil) }
            close(fd)
        }
        let target = openat(binds.fd, entry, oPath | O_NOFOLLOW | O_CLOEXEC)
        guard target >= 0 else { throw RunnerError.posix("cannot open the staging entry", staging, fix: nil) }
        defer { close(target) }
        let sourcePath = bind.bind.source ?? source.path
        let tree = runner_open_tree(
            source.fd, "",
            UInt32(RUNNER_OPEN_TREE_CLONE | RUNNER_OPEN_TREE_CLOEXEC | RUNNER_AT_EMPTY_PATH | RUNNER_AT_RECURSIVE))
        guard tree >= 0 else {
            throw RunnerError.posix("cannot clone the bind source (open_tree)", sourcePath, fix: nil)
        }
        defer { close(tree) }
        var attributes = UInt64(RUNNER_MOUNT_ATTR_NOSUID | RUNNER_MOUNT_ATTR_NODEV)
        if bind.bind.readOnly { attributes |= UInt64(RUNNER_MOUNT_ATTR_RDONLY) }
        guard
            runner_mount_setattr(tree, "", UInt32(RUNNER_AT_EMPTY_PATH | RUNNER_AT_RECURSIVE), attributes, 0) == 0
        else {
            throw RunnerError.posix("cannot set nosuid,nodev on the bind source (mount_setattr)", sourcePath, fix: nil)
        }
        guard
            runner_move_mount(
                tree, "", target, "", UInt32(RUNNER_MOVE_MOUNT_F_EMPTY_PATH | RUNNER_MOVE_MOUNT_T_EMPTY_PATH)) == 0
        else {
            throw RunnerError.posix("cannot mount the bind source on \(staging) (move_mount)", sourcePath, fix: nil)
        }
        return StagedBind(
            index: index, source: sourcePath, readOnly: bind.bind.readOnly, isDirectory: isDirectory,
            workRelative: bind.workRelative, device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// `<name>.binds` under the guest state directory, created 0700 when missing, opened by
    /// descriptor and checked to be a directory only we can change.
    static func bindsDirectory(guest: String, layout: HostLayout) throws(RunnerError) -> PathDescriptor {
        let state = try TrustedPath.openAnchor(layout.guestStateDirectory, layout: layout)
        let name = guest + ".binds"
        if mkdirat(state.fd, name, 0o700) != 0, errno != EEXIST {
            throw RunnerError.posix("cannot create the staging directory", layout.guestBindsDirectory(guest), fix: nil)
        }
        let fd = openat(state.fd, name, oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw RunnerError.posix("cannot open the staging directory", layout.guestBindsDirectory(guest), fix: nil)
        }
        let binds = PathDescriptor(fd: fd, path: layout.guestBindsDirectory(guest))
        guard let st = binds.status(), TrustedPath.isTrustedDirectory(st), (st.st_mode & 0o077) == 0 else {
            throw RunnerError(
                .unsafeInput, input: binds.path, problem: "is not a directory only root can use",
                fix: "remove it (`ci-nspawn-run gc --all`) and start the guest again")
        }
        return binds
    }

    /// Unmounts and removes every staging entry of `guest`, and its directory. Returns what could
    /// not be removed (for the log).
    @discardableResult
    static func remove(guest: String, layout: HostLayout) -> [String] {
        let directory = layout.guestBindsDirectory(guest)
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        var left: [String] = []
        var names: [String] = []
        if let dir = fdopendir(Glibc.dup(fd)) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(dir)
        }
        for name in names {
            let path = directory + "/" + name
            // Lazily: a guest's own copy of the mount lives on in its namespace until it ends.
            while umount2(path, Int32(RUNNER_MNT_DETACH | RUNNER_UMOUNT_NOFOLLOW)) == 0 {}
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let flags = (st.st_mode & S_IFMT) == S_IFDIR ? AT_REMOVEDIR : 0
            if unlinkat(fd, name, flags) != 0 { left.append(path) }
        }
        close(fd)
        if rmdir(directory) != 0, errno != ENOENT { left.append(directory) }
        return left
    }

    /// Guests with a staging directory but no record (a helper that died mid-start or
    /// mid-teardown): their names.
    static func orphans(layout: HostLayout) -> [String] {
        FilePaths.entries(of: layout.guestStateDirectory).compactMap { file in
            guard file.hasSuffix(".binds") else { return nil }
            let name = String(file.dropLast(6))
            guard GuestName.isValid(name), !FilePaths.exists(layout.guestRecord(name)) else {
                return nil
            }
            return name
        }
    }
}
