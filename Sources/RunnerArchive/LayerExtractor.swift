import CLibArchive

#if canImport(Glibc)
    import Glibc
#endif

/// How ``LayerExtractor`` turns an OCI image layer's entries into files.
///
/// A registry's layers are hostile: owners are mapped into the guests' ID range (or refused),
/// device nodes are skipped (a guest must not get a raw disk through an image), only the
/// extended attributes in ``keptAttributes`` are restored (never `trusted.overlay.*`, which would
/// steer the overlay a guest boots on), and every size cap of ``ExtractionPolicy/rootfs`` holds.
public struct LayerPolicy: Sendable, Hashable {
    /// Apply owners (needs root). Otherwise files belong to the caller.
    public var applyOwnership: Bool
    /// The host ID of the layer's ID 0: ID `n` becomes `idBase + n`. Nil: IDs as the layer has them.
    public var idBase: UInt32?
    /// How many IDs the range holds; with ``idBase`` an owner at or above it is refused
    /// (``ExtractionRule/unmappedOwner``).
    public var idCount: UInt32
    /// The extended attributes restored; every other one is dropped.
    public var keptAttributes: Set<String>
    /// The largest regular file allowed, in bytes.
    public var maxEntrySize: Int64
    /// The most bytes of content one layer may hold.
    public var maxTotalSize: Int64
    /// The most entries one layer may hold.
    public var maxEntries: Int

    public init(
        applyOwnership: Bool = true,
        idBase: UInt32? = nil,
        idCount: UInt32 = 65536,
        keptAttributes: Set<String> = ["security.capability"],
        maxEntrySize: Int64 = 8 << 30,
        maxTotalSize: Int64 = 64 << 30,
        maxEntries: Int = 4_000_000
    ) {
        self.applyOwnership = applyOwnership
        self.idBase = idBase
        self.idCount = idCount
        self.keptAttributes = keptAttributes
        self.maxEntrySize = maxEntrySize
        self.maxTotalSize = maxTotalSize
        self.maxEntries = maxEntries
    }
}

/// What applying one layer did.
public struct LayerSummary: Sendable, Hashable {
    /// Entries read (whiteouts included).
    public var entries = 0
    /// Bytes of file content written.
    public var contentBytes: Int64 = 0
    /// Whiteout and opaque markers applied.
    public var whiteouts = 0
    /// Character and block devices not created.
    public var skippedDevices = 0

    public init() {}
}

/// Applies OCI image layers (image-spec `layer.md`) one after another onto a directory: the
/// unpacking half of a registry pull.
///
/// Rules, beyond the safe extractor's:
/// - `.wh.NAME` deletes NAME (and everything below it) of the lower layers and is never created;
///   `.wh..wh..opq` empties its directory of lower-layer content, wherever it stands in the layer
///   (what the same layer wrote, before or after the marker, stays); other `.wh..wh.*` (aufs
///   metadata) are ignored.
/// - An entry replaces what lower layers left at its path: a non-directory replacing a directory
///   removes the directory's tree, a directory replacing a non-directory unlinks it, a file is
///   never written into (it is unlinked and created again, so a hard link elsewhere keeps the
///   old content); a directory onto a directory keeps the contents and takes the new metadata.
/// - Parents are resolved inside the tree (`openat2(RESOLVE_IN_ROOT)`): a symlink of a lower
///   layer resolves as it would in the guest, and nothing ever leaves the tree. Absolute paths
///   and `..` are refused; a hard link must name something already in the tree (not a directory).
/// - Symlink targets are kept as written: they are resolved only inside the guest, and by this
///   extractor only through `RESOLVE_IN_ROOT`.
public enum LayerExtractor {
    /// Applies the layer `archive` (tar; gzip, zstd or uncompressed, detected) onto `root`,
    /// which exists. On an error `root` is left part-way: apply into a staging directory and
    /// discard it on failure.
    @discardableResult
    public static func apply(_ archive: String, onto root: String, policy: LayerPolicy) throws(ArchiveError)
        -> LayerSummary
    {
        let reader = try ArchiveReader(path: archive)
        var application = try LayerApplication(reader: reader, root: root, policy: policy)
        defer { application.closeAll() }
        try application.run()
        return application.summary
    }
}

/// The state of one layer's application.
struct LayerApplication {
    struct Fixup {
        var permissions: UInt32
        var owner: (UInt32, UInt32)?
        var modificationTime: Int64
        var attributes: [ExtendedAttribute]
    }

    static let opaqueMarker = ".wh..wh..opq"
    static let whiteoutPrefix = ".wh."

    let reader: ArchiveReader
    let root: String
    let policy: LayerPolicy
    let rootFD: Int32
    var summary = LayerSummary()
    /// Entry paths (normal form) this layer wrote, implicit parents included: what an opaque
    /// marker or a whiteout keeps.
    var written: Set<String> = []
    var directoryFDs: [String: Int32] = [:]
    var fixups: [String: Fixup] = [:]

    init(reader: ArchiveReader, root: String, policy: LayerPolicy) throws(ArchiveError) {
        self.reader = reader
        self.root = root
        self.policy = policy
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw systemError("could not open", root) }
        rootFD = fd
    }

    mutating func closeAll() {
        dropDirectoryCache()
        close(rootFD)
    }

    mutating func dropDirectoryCache() {
        for fd in directoryFDs.values { close(fd) }
        directoryFDs.removeAll(keepingCapacity: true)
    }

    func refused(_ entry: String, _ rule: ExtractionRule, _ detail: String = "") -> ArchiveError {
        .refused(archive: reader.name, entry: entry, rule: rule, detail: detail)
    }

    func display(_ key: String) -> String { key.isEmpty ? root : root + "/" + key }

    mutating func run() throws(ArchiveError) {
        while let raw = try reader.nextRaw() {
            let (entry, validName) = ArchiveEntry.decode(raw, withExtendedAttributes: true)
            summary.entries += 1
            try apply(entry, validName: validName)
        }
        try applyFixups()
    }

    /// The host owner of an entry, or nil when owners are not applied.
    func owner(_ entry: ArchiveEntry) throws(ArchiveError) -> (UInt32, UInt32)? {
        guard policy.applyOwnership else { return nil }
        guard let base = policy.idBase else { return (entry.uid, entry.gid) }
        guard entry.uid < policy.idCount, entry.gid < policy.idCount else {
            throw refused(
                entry.path, .unmappedOwner,
                "uid \(entry.uid), gid \(entry.gid); the guests' range holds IDs 0-\(policy.idCount - 1)")
        }
        return (base + entry.uid, base + entry.gid)
    }

    /// The owner of directories the layer implies without naming them: (mapped) root.
    var implicitOwner: (UInt32, UInt32)? {
        guard policy.applyOwnership else { return nil }
        return (policy.idBase ?? 0, policy.idBase ?? 0)
    }

    mutating func apply(_ entry: ArchiveEntry, validName: Bool) throws(ArchiveError) {
        // Only here, between entries, so no descriptor an entry holds is closed under it.
        if directoryFDs.count > 256 { dropDirectoryCache() }
        let name = entry.path
        guard summary.entries <= policy.maxEntries else {
            throw refused(name, .tooManyEntries, "more than \(policy.maxEntries) entries")
        }
        guard validName else { throw refused(name, .invalidName, "the name is not valid UTF-8") }
        let components: [Substring]
        do throws(ExtractionRule) {
            components = try ArchivePath.components(name)
        } catch {
            throw refused(name, error)
        }
        guard let lastComponent = components.last else {
            // The layer's root: its metadata applies to the tree's root.
            if entry.kind == .directory { fixups[""] = try fixup(entry) }
            return
        }
        let last = String(lastComponent)
        let parent = components.dropLast()
        if last.hasPrefix(Self.whiteoutPrefix) {
            summary.whiteouts += 1
            if last == Self.opaqueMarker {
                try opaque(parent, entry: name)
            } else if !last.hasPrefix(Self.whiteoutPrefix + Self.whiteoutPrefix) {
                let hidden = String(last.dropFirst(Self.whiteoutPrefix.count))
                guard !hidden.isEmpty, hidden != ".", hidden != ".." else {
                    throw refused(name, .invalidName, "a whiteout must name an entry")
                }
                try whiteout(parent, name: hidden, entry: name)
            }
            return
        }
        switch entry.kind {
        case .socket: throw refused(name, .socket)
        case .characterDevice, .blockDevice:
            summary.skippedDevices += 1
            return
        case .regularFile:
            guard entry.size <= policy.maxEntrySize else {
                throw refused(name, .entryTooLarge, "\(entry.size) bytes, the cap is \(policy.maxEntrySize)")
            }
            guard summary.contentBytes + entry.size <= policy.maxTotalSize else {
                throw refused(name, .totalTooLarge, "more than \(policy.maxTotalSize) bytes in total")
            }
        default: break
        }
        let owner = try owner(entry)
        let key = components.joined(separator: "/")
        guard let parentFD = try directoryFD(parent, create: true, entry: name) else {
            throw refused(name, .notADirectory, "its parent could not be made")
        }
        var st = stat()
        if fstatat(parentFD, last, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            let isDirectory = st.st_mode & S_IFMT == S_IFDIR
            if isDirectory && entry.kind == .directory {
                written.insert(key)
                fixups[key] = try fixup(entry)
                return
            }
            if entry.kind == .hardlink, (try? ArchivePath.normalized(entry.linkTarget ?? "")) == key {
                written.insert(key)
                return
            }
            try removeNode(parentFD, last, isDirectory: isDirectory, key: key)
            if isDirectory { dropDirectoryCache() }
        } else if errno != ENOENT {
            throw systemError("could not inspect", display(key))
        }
        // The cache may have been dropped: open the parent again.
        guard let parentFD = try directoryFD(parent, create: true, entry: name) else {
            throw refused(name, .notADirectory, "its parent could not be made")
        }
        switch entry.kind {
        case .directory:
            guard mkdirat(parentFD, last, 0o700) == 0 else { throw systemError("could not create", display(key)) }
            fixups[key] = try fixup(entry)
        case .regularFile:
            try writeFile(entry, key: key, parentFD: parentFD, name: last, owner: owner)
        case .symlink:
            guard symlinkat(entry.linkTarget ?? "", parentFD, last) == 0 else {
                throw systemError("could not create", display(key))
            }
            try finishNode(entry, parentFD: parentFD, name: last, key: key, owner: owner, isSymlink: true)
        case .hardlink:
            try link(entry, key: key, parentFD: parentFD, name: last)
        case .fifo:
            guard mknodat(parentFD, last, S_IFIFO | mode_t(entry.permissions & 0o7777), 0) == 0 else {
                throw systemError("could not create the fifo", display(key))
            }
            try finishNode(entry, parentFD: parentFD, name: last, key: key, owner: owner, isSymlink: false)
        case .characterDevice, .blockDevice, .socket:
            return
        }
        written.insert(key)
    }

    func fixup(_ entry: ArchiveEntry) throws(ArchiveError) -> Fixup {
        Fixup(
            permissions: entry.permissions, owner: try owner(entry), modificationTime: entry.modificationTime,
            attributes: kept(entry.extendedAttributes))
    }

    func kept(_ attributes: [ExtendedAttribute]) -> [ExtendedAttribute] {
        attributes.filter { policy.keptAttributes.contains($0.name) }
    }

    /// The descriptor of the directory at `components`, resolved inside the tree. Missing
    /// directories are made (owned by mapped root, 0755) when `create`; otherwise nil.
    mutating func directoryFD(_ components: ArraySlice<Substring>, create: Bool, entry: String) throws(ArchiveError)
        -> Int32?
    {
        if components.isEmpty { return rootFD }
        let key = components.joined(separator: "/")
        if let fd = directoryFDs[key] { return fd }
        var fd = runner_archive_openat2_in_root(rootFD, key, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 && errno == EAGAIN {
            fd = runner_archive_openat2_in_root(rootFD, key, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        if fd < 0 {
            let code = errno
            switch code {
            case ENOENT:
                guard create else { return nil }
            case ENOTDIR:
                throw refused(entry, .notADirectory, "'\(key)' is not a directory")
            case ELOOP, EXDEV:
                throw refused(entry, .throughSymlink, "'\(key)' does not resolve to a directory of the tree")
            default:
                throw .system(path: display(key), operation: "could not open", errno: code)
            }
            guard let parentFD = try directoryFD(components.dropLast(), create: true, entry: entry) else { return nil }
            let name = String(components[components.endIndex - 1])
            guard mkdirat(parentFD, name, 0o755) == 0 else {
                if errno == EEXIST {
                    throw refused(entry, .notADirectory, "'\(key)' is a dangling symlink")
                }
                throw systemError("could not create", display(key))
            }
            if let (uid, gid) = implicitOwner, fchownat(parentFD, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 {
                throw systemError("could not change the owner", display(key))
            }
            written.insert(key)
            fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw systemError("could not open", display(key)) }
        }
        directoryFDs[key] = fd
        return fd
    }

    /// Removes `name` (a directory with all it holds) from the directory open as `parentFD`.
    func removeNode(_ parentFD: Int32, _ name: String, isDirectory: Bool, key: String) throws(ArchiveError) {
        if isDirectory {
            guard FileSystem.removeTree(in: parentFD, name: name, path: display(key)) else {
                throw systemError("could not remove", display(key))
            }
        } else if unlinkat(parentFD, name, 0) != 0 && errno != ENOENT {
            throw systemError("could not remove", display(key))
        }
    }

    /// `.wh.NAME` in the directory `parent`: NAME of the lower layers goes. What this layer
    /// wrote there stays (a directory it wrote loses only its lower-layer content).
    mutating func whiteout(_ parent: ArraySlice<Substring>, name: String, entry: String) throws(ArchiveError) {
        guard let parentFD = try directoryFD(parent, create: false, entry: entry) else { return }
        let key = (parent + [Substring(name)]).joined(separator: "/")
        var st = stat()
        guard fstatat(parentFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        let isDirectory = st.st_mode & S_IFMT == S_IFDIR
        if written.contains(key) {
            guard isDirectory else { return }
            let fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw systemError("could not open", display(key)) }
            defer { close(fd) }
            try clearLower(fd, key: key)
        } else {
            try removeNode(parentFD, name, isDirectory: isDirectory, key: key)
        }
        if isDirectory { dropDirectoryCache() }
    }

    /// `.wh..wh..opq` in `directory`: its lower-layer content goes, whatever the marker's place
    /// in the layer.
    mutating func opaque(_ directory: ArraySlice<Substring>, entry: String) throws(ArchiveError) {
        guard let cached = try directoryFD(directory, create: true, entry: entry) else { return }
        let fd = dup(cached)
        guard fd >= 0 else { throw systemError("could not open", display(directory.joined(separator: "/"))) }
        defer { close(fd) }
        try clearLower(fd, key: directory.joined(separator: "/"))
        dropDirectoryCache()
    }

    /// Removes every entry below the directory open as `fd` (at `key`) that this layer did not
    /// write, descending into the directories it did.
    func clearLower(_ fd: Int32, key: String) throws(ArchiveError) {
        for child in try FileSystem.names(inDirectory: fd, path: display(key)) {
            let childKey = key.isEmpty ? child : key + "/" + child
            var st = stat()
            guard fstatat(fd, child, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let isDirectory = st.st_mode & S_IFMT == S_IFDIR
            if written.contains(childKey) {
                guard isDirectory else { continue }
                let childFD = openat(fd, child, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard childFD >= 0 else { throw systemError("could not open", display(childKey)) }
                defer { close(childFD) }
                try clearLower(childFD, key: childKey)
            } else {
                try removeNode(fd, child, isDirectory: isDirectory, key: childKey)
            }
        }
    }

    mutating func link(_ entry: ArchiveEntry, key: String, parentFD: Int32, name: String) throws(ArchiveError) {
        let target = entry.linkTarget ?? ""
        let targetComponents: [Substring]
        do throws(ExtractionRule) {
            targetComponents = try ArchivePath.components(target)
        } catch {
            throw refused(entry.path, .hardlinkEscape, "it points at '\(target)' (\(error.summary))")
        }
        guard let targetName = targetComponents.last else {
            throw refused(entry.path, .hardlinkEscape, "it points at the root")
        }
        guard let targetParent = try directoryFD(targetComponents.dropLast(), create: false, entry: entry.path) else {
            throw refused(entry.path, .hardlinkEscape, "it points at '\(target)', which is not in the tree")
        }
        var st = stat()
        guard fstatat(targetParent, String(targetName), &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw refused(entry.path, .hardlinkEscape, "it points at '\(target)', which is not in the tree")
        }
        guard st.st_mode & S_IFMT != S_IFDIR else {
            throw refused(entry.path, .hardlinkEscape, "it points at the directory '\(target)'")
        }
        // The target's parent may be the cache's only copy of `parentFD`'s directory: both stay open.
        guard linkat(targetParent, String(targetName), parentFD, name, 0) == 0 else {
            throw systemError("could not create the hardlink", display(key))
        }
    }

    mutating func writeFile(
        _ entry: ArchiveEntry, key: String, parentFD: Int32, name: String, owner: (UInt32, UInt32)?
    ) throws(ArchiveError) {
        let fd = openat(parentFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw systemError("could not create", display(key)) }
        defer { close(fd) }
        var end: Int64 = 0
        let shown = display(key)
        let limit = entry.size
        let archiveName = reader.name
        try reader.readContent { (block, offset) throws(ArchiveError) in
            guard offset + Int64(block.count) <= limit else {
                throw ArchiveError.refused(
                    archive: archiveName, entry: entry.path, rule: .entryTooLarge,
                    detail: "more data than its header says")
            }
            var done = 0
            while done < block.count {
                let n = pwrite(
                    fd, block.baseAddress?.advanced(by: done), block.count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw systemError("could not write", shown)
                }
                done += n
            }
            end = max(end, offset + Int64(block.count))
        }
        if end < entry.size {
            guard ftruncate(fd, off_t(entry.size)) == 0 else { throw systemError("could not write", shown) }
        }
        summary.contentBytes += entry.size
        if let (uid, gid) = owner {
            guard fchown(fd, uid, gid) == 0 else { throw systemError("could not change the owner", shown) }
        }
        guard fchmod(fd, mode_t(entry.permissions & 0o7777)) == 0 else {
            throw systemError("could not change the mode", shown)
        }
        for attribute in kept(entry.extendedAttributes) {
            let result = attribute.value.withUnsafeBytes { fsetxattr(fd, attribute.name, $0.baseAddress, $0.count, 0) }
            guard result == 0 else { throw systemError("could not set \(attribute.name)", shown) }
        }
        var times = [timespec](repeating: timespec(tv_sec: time_t(entry.modificationTime), tv_nsec: 0), count: 2)
        guard futimens(fd, &times) == 0 else { throw systemError("could not set the times", shown) }
    }

    /// Owner, mode and times of a node made by name (a symlink or a fifo).
    func finishNode(
        _ entry: ArchiveEntry, parentFD: Int32, name: String, key: String, owner: (UInt32, UInt32)?,
        isSymlink: Bool
    ) throws(ArchiveError) {
        let shown = display(key)
        if let (uid, gid) = owner, fchownat(parentFD, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 {
            throw systemError("could not change the owner", shown)
        }
        if !isSymlink, fchmodat(parentFD, name, mode_t(entry.permissions & 0o7777), 0) != 0 {
            throw systemError("could not change the mode", shown)
        }
        var times = [timespec](repeating: timespec(tv_sec: time_t(entry.modificationTime), tv_nsec: 0), count: 2)
        guard utimensat(parentFD, name, &times, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw systemError("could not set the times", shown)
        }
    }

    /// Directory metadata, deepest first, after everything in the layer was written. A
    /// directory a later entry of the layer removed or replaced is skipped.
    mutating func applyFixups() throws(ArchiveError) {
        dropDirectoryCache()
        let order = fixups.keys.sorted { $1.utf8.lexicographicallyPrecedes($0.utf8) }
        for key in order {
            guard let fixup = fixups[key] else { continue }
            let fd =
                key.isEmpty
                ? dup(rootFD)
                : runner_archive_openat2_in_root(rootFD, key, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 {
                if errno == ENOENT || errno == ELOOP || errno == ENOTDIR { continue }
                throw systemError("could not open", display(key))
            }
            defer { close(fd) }
            let shown = display(key)
            if let (uid, gid) = fixup.owner, fchown(fd, uid, gid) != 0 {
                throw systemError("could not change the owner", shown)
            }
            guard fchmod(fd, mode_t(fixup.permissions & 0o7777)) == 0 else {
                throw systemError("could not change the mode", shown)
            }
            for attribute in fixup.attributes {
                let result = attribute.value.withUnsafeBytes {
                    fsetxattr(fd, attribute.name, $0.baseAddress, $0.count, 0)
                }
                guard result == 0 else { throw systemError("could not set \(attribute.name)", shown) }
            }
            var times = [timespec](repeating: timespec(tv_sec: time_t(fixup.modificationTime), tv_nsec: 0), count: 2)
            guard futimens(fd, &times) == 0 else { throw systemError("could not set the times", shown) }
        }
    }
}
