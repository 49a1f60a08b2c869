import CLibArchive

#if canImport(Glibc)
    import Glibc
#endif

/// Small fd-relative file system helpers for the archive layer (no Foundation).
enum FileSystem {
    /// The names in the directory open at `fd` (without `.` and `..`). Consumes nothing:
    /// the caller still owns `fd`.
    static func names(inDirectory fd: Int32, path: String) throws(ArchiveError) -> [String] {
        let copy = dup(fd)
        guard copy >= 0, let dir = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw systemError("could not read the directory", path)
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw systemError("could not read the directory", path) }
                break
            }
            let name: String? = withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                raw.baseAddress.flatMap { String(validatingCString: $0.assumingMemoryBound(to: CChar.self)) }
            }
            guard let name else {
                throw .unsupportedSource(path: path, problem: "holds a file name that is not valid UTF-8")
            }
            if name == "." || name == ".." { continue }
            names.append(name)
        }
        return names
    }

    /// Removes `path` and everything under it, without following symlinks. Best effort:
    /// returns false when something could not be removed.
    @discardableResult
    static func removeTree(_ path: String) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else { return errno == ENOENT }
        if UInt32(st.st_mode) & FileTypeBits.mask != FileTypeBits.dir {
            return unlink(path) == 0
        }
        let parent = parentDirectory(path)
        let pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard pfd >= 0 else { return false }
        defer { close(pfd) }
        return removeTree(in: pfd, name: lastComponent(path), path: path)
    }

    /// Removes the entry `name` in the directory open at `parentFD`, recursively.
    static func removeTree(in parentFD: Int32, name: String, path: String) -> Bool {
        if unlinkat(parentFD, name, 0) == 0 { return true }
        guard errno == EISDIR || errno == EPERM else { return errno == ENOENT }
        var fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 && errno == EACCES {
            // A directory extracted with mode 0500 or less: make it ours again.
            fchmodat(parentFD, name, 0o700, 0)
            fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        guard fd >= 0 else { return false }
        defer { close(fd) }
        fchmod(fd, 0o700)
        var ok = true
        if let children = try? names(inDirectory: fd, path: path) {
            for child in children where !removeTree(in: fd, name: child, path: path + "/" + child) {
                ok = false
            }
        } else {
            ok = false
        }
        return unlinkat(parentFD, name, AT_REMOVEDIR) == 0 && ok
    }

    static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func lastComponent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Creates `path` and its missing parents (0755).
    static func createDirectories(_ path: String) throws(ArchiveError) {
        var st = stat()
        if stat(path, &st) == 0 {
            if UInt32(st.st_mode) & FileTypeBits.mask == FileTypeBits.dir { return }
            throw ArchiveError.system(path: path, operation: "could not create the directory", errno: ENOTDIR)
        }
        let parent = parentDirectory(path)
        if parent != path && parent != "." && parent != "/" {
            try createDirectories(parent)
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw systemError("could not create the directory", path)
        }
    }

    /// A unique, fresh name beside `path`: `<dir>/.<name>.<tag>-<pid>-<random>`.
    static func siblingName(of path: String, tag: String) -> String {
        "\(parentDirectory(path))/.\(lastComponent(path)).\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Writes all of `bytes` to `fd`.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(ArchiveError) {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress?.advanced(by: offset), bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw systemError("could not write", path)
            }
            offset += n
        }
    }

    /// The extended attributes of an open file (`fd >= 0`) or of `path` (not following a
    /// symlink) whose names start with one of `prefixes`, sorted by name.
    static func extendedAttributes(fd: Int32, path: String, prefixes: [String]) throws(ArchiveError)
        -> [ExtendedAttribute]
    {
        if prefixes.isEmpty { return [] }
        var listBuffer = [CChar](repeating: 0, count: 4096)
        var length = listBuffer.withUnsafeMutableBufferPointer { buffer in
            fd >= 0
                ? flistxattr(fd, buffer.baseAddress, buffer.count) : llistxattr(path, buffer.baseAddress, buffer.count)
        }
        if length < 0 && errno == ERANGE {
            let needed = fd >= 0 ? flistxattr(fd, nil, 0) : llistxattr(path, nil, 0)
            listBuffer = [CChar](repeating: 0, count: max(needed, 0) + 1)
            length = listBuffer.withUnsafeMutableBufferPointer { buffer in
                fd >= 0
                    ? flistxattr(fd, buffer.baseAddress, buffer.count)
                    : llistxattr(path, buffer.baseAddress, buffer.count)
            }
        }
        if length < 0 {
            if errno == ENOTSUP || errno == ENODATA { return [] }
            throw systemError("could not list extended attributes", path)
        }
        if length == 0 { return [] }
        var names: [String] = []
        var start = 0
        for index in 0..<length where listBuffer[index] == 0 {
            let name = listBuffer[start..<index].withUnsafeBufferPointer { part in
                String(decoding: UnsafeRawBufferPointer(part), as: UTF8.self)
            }
            if prefixes.contains(where: { name.hasPrefix($0) }) { names.append(name) }
            start = index + 1
        }
        var result: [ExtendedAttribute] = []
        for name in names.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let size = fd >= 0 ? fgetxattr(fd, name, nil, 0) : lgetxattr(path, name, nil, 0)
            if size < 0 {
                if errno == ENODATA { continue }
                throw systemError("could not read extended attribute \(name)", path)
            }
            var value = [UInt8](repeating: 0, count: size)
            let got = value.withUnsafeMutableBytes { raw in
                fd >= 0
                    ? fgetxattr(fd, name, raw.baseAddress, raw.count)
                    : lgetxattr(path, name, raw.baseAddress, raw.count)
            }
            if got < 0 { throw systemError("could not read extended attribute \(name)", path) }
            result.append(ExtendedAttribute(name: name, value: Array(value.prefix(got))))
        }
        return result
    }
}
