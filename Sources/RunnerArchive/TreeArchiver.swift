import CLibArchive

#if canImport(Glibc)
    import Glibc
#endif

/// Archives a directory tree from disk, entries sorted bytewise by path.
///
/// Two fidelities:
/// - ``Fidelity/reproducible``: the bundle rules of ``ReproducibleArchive`` (root-owned,
///   mtime = `SOURCE_DATE_EPOCH`, normalised modes); regular files, directories and symlinks
///   only (anything else is an error); hardlinked files are stored as separate files. Paths
///   are relative (`bin/x`), no root entry.
/// - ``Fidelity/full``: for root file systems: numeric uid/gid (no names), all permission bits
///   including setuid/setgid/sticky, character and block devices, fifos, hardlinks as hardlink
///   entries (the first path in sorted order holds the content), symlinks, and the extended
///   attributes under ``Options/extendedAttributePrefixes`` (`security.capability`); mtimes are
///   clamped to `SOURCE_DATE_EPOCH` in whole seconds. Paths start with `./` and the root
///   directory is the first entry (`./`), as mmdebstrap and `tar -C dir .` write them.
///   Sockets are skipped (a tar entry cannot carry one); they are counted in the summary.
public enum TreeArchiver {
    public enum Fidelity: Sendable, Hashable {
        case reproducible
        case full
    }

    public struct Options: Sendable, Hashable {
        public var fidelity: Fidelity
        /// Reproducible: every entry's mtime. Full: the clamp (later mtimes become this).
        public var modificationTime: Int64
        public var compression: ArchiveCompression
        /// Full fidelity: which extended attributes to keep, by name prefix.
        public var extendedAttributePrefixes: [String]

        public init(
            fidelity: Fidelity,
            modificationTime: Int64 = SourceDateEpoch.defaultValue,
            compression: ArchiveCompression = .defaultGzip,
            extendedAttributePrefixes: [String] = ["security."]
        ) {
            self.fidelity = fidelity
            self.modificationTime = modificationTime
            self.compression = compression
            self.extendedAttributePrefixes = extendedAttributePrefixes
        }
    }

    /// What ``archive(directory:to:options:replaceExisting:)`` wrote.
    public struct Summary: Sendable, Hashable {
        public var entries: Int
        public var contentBytes: Int64
        /// Sockets left out (full fidelity).
        public var skippedSockets: [String]
    }

    /// Archives the tree under `directory` into the archive file `path` (temporary file + rename).
    @discardableResult
    public static func archive(
        directory: String,
        to path: String,
        options: Options,
        replaceExisting: Bool = false
    ) throws(ArchiveError) -> Summary {
        let rootFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw systemError("could not open the directory", directory) }
        defer { close(rootFD) }
        var nodes: [Node] = []
        var rootStat = stat()
        guard fstat(rootFD, &rootStat) == 0 else { throw systemError("could not stat", directory) }
        try scan(directoryFD: rootFD, relative: "", display: directory, into: &nodes)
        nodes.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        return try ArchiveFile.write(to: path, compression: options.compression, replaceExisting: replaceExisting) {
            (writer) throws(ArchiveError) in
            var skipped: [String] = []
            try write(
                nodes, rootStat: rootStat, rootFD: rootFD, directory: directory, options: options, writer: writer,
                skipped: &skipped)
            return Summary(entries: writer.entryCount, contentBytes: writer.contentBytes, skippedSockets: skipped)
        }
    }

    /// Every file under `directory` (not following symlinks), sorted bytewise by path, with
    /// paths relative to it (`bin/x`) and full metadata (owner, mode, size, mtime, link target,
    /// device numbers; no extended attributes).
    public static func list(directory: String) throws(ArchiveError) -> [ArchiveEntry] {
        let rootFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw systemError("could not open the directory", directory) }
        defer { close(rootFD) }
        var nodes: [Node] = []
        try scan(directoryFD: rootFD, relative: "", display: directory, into: &nodes)
        nodes.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        let options = Options(fidelity: .full, modificationTime: .max)
        var entries: [ArchiveEntry] = []
        entries.reserveCapacity(nodes.count)
        for node in nodes {
            guard let kind = ArchiveEntryKind(statMode: UInt32(node.info.st_mode)) else { continue }
            var entry = header(for: node.path, info: node.info, kind: kind, options: options)
            if kind == .symlink {
                entry.linkTarget = try readLink(rootFD: rootFD, path: node.path, display: directory + "/" + node.path)
            }
            entries.append(entry)
        }
        return entries
    }

    /// One file found by the scan: its path relative to the root and its `lstat`.
    struct Node {
        var path: String
        var info: stat
    }

    /// Depth-first scan with fd-relative calls: one `fstatat` per entry, one `openat` per
    /// directory.
    static func scan(directoryFD: Int32, relative: String, display: String, into nodes: inout [Node])
        throws(ArchiveError)
    {
        for name in try FileSystem.names(inDirectory: directoryFD, path: display) {
            let path = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard fstatat(directoryFD, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw systemError("could not stat", display + "/" + name)
            }
            nodes.append(Node(path: path, info: info))
            if UInt32(info.st_mode) & FileTypeBits.mask == FileTypeBits.dir {
                let child = openat(directoryFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw systemError("could not open the directory", display + "/" + name) }
                defer { close(child) }
                try scan(directoryFD: child, relative: path, display: display + "/" + name, into: &nodes)
            }
        }
    }

    static func write(
        _ nodes: [Node],
        rootStat: stat,
        rootFD: Int32,
        directory: String,
        options: Options,
        writer: ArchiveWriter,
        skipped: inout [String]
    ) throws(ArchiveError) {
        let full = options.fidelity == .full
        if full {
            var root = header(for: "./", info: rootStat, kind: .directory, options: options)
            root.extendedAttributes = try FileSystem.extendedAttributes(
                fd: rootFD, path: directory, prefixes: options.extendedAttributePrefixes)
            try writer.writeHeader(root)
        }
        // Full fidelity: the first path (in sorted order) of each multiply-linked inode.
        var firstLink: [InodeKey: String] = [:]
        for node in nodes {
            let source = directory + "/" + node.path
            let name = full ? "./" + node.path : node.path
            guard let kind = ArchiveEntryKind(statMode: UInt32(node.info.st_mode)) else {
                throw .unsupportedSource(path: source, problem: "has an unknown file type")
            }
            switch kind {
            case .socket:
                if full {
                    skipped.append(source)
                    continue
                }
                throw .unsupportedSource(path: source, problem: "is a socket, which a reproducible archive cannot hold")
            case .characterDevice, .blockDevice, .fifo:
                guard full else {
                    throw .unsupportedSource(
                        path: source, problem: "is a \(kind.rawValue), which a reproducible archive cannot hold")
                }
            default:
                break
            }
            var entry = header(for: name, info: node.info, kind: kind, options: options)
            if full && kind != .directory && node.info.st_nlink > 1 {
                let key = InodeKey(device: UInt64(node.info.st_dev), inode: UInt64(node.info.st_ino))
                if let first = firstLink[key] {
                    entry.kind = .hardlink
                    entry.linkTarget = first
                    entry.size = 0
                    try writer.writeHeader(entry)
                    continue
                }
                firstLink[key] = name
            }
            switch kind {
            case .regularFile:
                let fd = openat(rootFD, node.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else { throw systemError("could not open", source) }
                defer { close(fd) }
                if full {
                    entry.extendedAttributes = try FileSystem.extendedAttributes(
                        fd: fd, path: source, prefixes: options.extendedAttributePrefixes)
                }
                try writer.write(entry, copyingFrom: fd, sourcePath: source)
            case .symlink:
                entry.linkTarget = try readLink(rootFD: rootFD, path: node.path, display: source)
                try writer.writeHeader(entry)
            default:
                if full {
                    entry.extendedAttributes = try FileSystem.extendedAttributes(
                        fd: -1, path: source, prefixes: options.extendedAttributePrefixes)
                }
                try writer.writeHeader(entry)
            }
        }
    }

    struct InodeKey: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    static func header(for name: String, info: stat, kind: ArchiveEntryKind, options: Options) -> ArchiveEntry {
        let mode = UInt32(info.st_mode)
        switch options.fidelity {
        case .reproducible:
            let permissions: UInt32 =
                switch kind {
                case .directory: 0o755
                case .symlink: 0o777
                default: (mode & 0o111) != 0 ? 0o755 : 0o644
                }
            return ArchiveEntry(
                path: name, kind: kind, permissions: permissions, size: kind == .regularFile ? Int64(info.st_size) : 0,
                uid: 0, gid: 0, userName: "root", groupName: "root", modificationTime: options.modificationTime)
        case .full:
            return ArchiveEntry(
                path: name, kind: kind, permissions: mode & 0o7777,
                size: kind == .regularFile ? Int64(info.st_size) : 0,
                uid: info.st_uid, gid: info.st_gid,
                modificationTime: min(Int64(info.st_mtim.tv_sec), options.modificationTime),
                deviceMajor: runner_major(info.st_rdev), deviceMinor: runner_minor(info.st_rdev))
        }
    }

    static func readLink(rootFD: Int32, path: String, display: String) throws(ArchiveError) -> String {
        var size = 256
        while true {
            var buffer = [CChar](repeating: 0, count: size)
            let n = buffer.withUnsafeMutableBufferPointer { raw in
                raw.baseAddress.map { readlinkat(rootFD, path, $0, raw.count) } ?? -1
            }
            if n < 0 { throw systemError("could not read the symlink", display) }
            if n < size {
                let bytes = buffer[0..<n].map { UInt8(bitPattern: $0) }
                guard let target = String(validating: bytes, as: UTF8.self) else {
                    throw .unsupportedSource(path: display, problem: "is a symlink whose target is not valid UTF-8")
                }
                return target
            }
            size *= 4
        }
    }
}
