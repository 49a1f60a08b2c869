import CLibArchive

#if canImport(Glibc)
    import Glibc
#endif

/// What an extraction wrote.
public struct ExtractionSummary: Sendable, Hashable {
    public var entries: Int
    /// Bytes of file content written.
    public var contentBytes: Int64

    public init(entries: Int = 0, contentBytes: Int64 = 0) {
        self.entries = entries
        self.contentBytes = contentBytes
    }
}

/// Safe extraction of untrusted archives.
///
/// The archive is extracted into a fresh directory beside the target (mode 0700 while it is
/// filled) and renamed onto the target only when every entry passed the ``ExtractionPolicy``
/// and was written: a refused, truncated or unreadable archive leaves the target as it was and
/// no staging directory behind. Nothing is ever followed: directories are opened one component
/// at a time with `O_NOFOLLOW` relative to their parent's descriptor, and the extractor tracks
/// every path it created, so an entry below a symlink (even one the same archive created) is
/// refused before any system call touches it.
public enum ArchiveExtractor {
    /// Extracts `archive` into `target` (created; its parents too). When `target` exists, it
    /// is replaced atomically if `replaceExisting`, otherwise that is an error (checked before
    /// anything is extracted).
    @discardableResult
    public static func extract(
        _ archive: String,
        into target: String,
        policy: ExtractionPolicy = .default,
        replaceExisting: Bool = false,
        progress: ((ExtractionSummary) -> Void)? = nil
    ) throws(ArchiveError) -> ExtractionSummary {
        var st = stat()
        if !replaceExisting && lstat(target, &st) == 0 { throw .destinationExists(path: target) }
        let staged = try stage(archive, for: target, policy: policy, progress: progress)
        try staged.commit(replacingExisting: replaceExisting)
        return staged.summary
    }

    /// Extracts `archive` into a staging directory beside `target` and stops there: the caller
    /// inspects ``StagedExtraction/path`` (e.g. checks a manifest), then commits or discards it.
    public static func stage(
        _ archive: String,
        for target: String,
        policy: ExtractionPolicy = .default,
        progress: ((ExtractionSummary) -> Void)? = nil
    ) throws(ArchiveError) -> StagedExtraction {
        let parent = FileSystem.parentDirectory(target)
        try FileSystem.createDirectories(parent)
        var template = Array("\(parent)/.\(FileSystem.lastComponent(target)).extract-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        guard let made else { throw systemError("could not create a staging directory", parent) }
        let staging = String(cString: made)
        do throws(ArchiveError) {
            let reader = try ArchiveReader(path: archive)
            var extraction = try Extraction(reader: reader, staging: staging, policy: policy)
            defer { extraction.closeAll() }
            try extraction.run(progress: progress)
            return StagedExtraction(path: staging, target: target, summary: extraction.summary)
        } catch {
            FileSystem.removeTree(staging)
            throw error
        }
    }
}

/// An extracted archive waiting beside its target. Dropping it without ``commit(replacingExisting:)``
/// removes the staging directory.
public final class StagedExtraction {
    /// The staging directory holding the extracted tree.
    public let path: String
    /// Where ``commit(replacingExisting:)`` puts it.
    public let target: String
    public let summary: ExtractionSummary
    private var settled = false

    init(path: String, target: String, summary: ExtractionSummary) {
        self.path = path
        self.target = target
        self.summary = summary
    }

    deinit {
        if !settled { FileSystem.removeTree(path) }
    }

    /// Renames the staging directory onto the target. An existing target is swapped out
    /// atomically (`renameat2(RENAME_EXCHANGE)`) and then removed when `replacingExisting`;
    /// otherwise its existence is an error and the staging directory is removed.
    public func commit(replacingExisting: Bool) throws(ArchiveError) {
        guard !settled else { return }
        if runner_renameat2(AT_FDCWD, path, AT_FDCWD, target, RUNNER_RENAME_NOREPLACE) == 0 {
            settled = true
            return
        }
        var code = errno
        if code == EINVAL {
            // No RENAME_NOREPLACE on this file system: check, then rename.
            var st = stat()
            if lstat(target, &st) != 0 {
                guard rename(path, target) == 0 else { throw systemError("could not rename into place", target) }
                settled = true
                return
            }
            code = EEXIST
        }
        guard code == EEXIST || code == ENOTEMPTY else {
            throw .system(path: target, operation: "could not rename into place", errno: code)
        }
        guard replacingExisting else {
            discard()
            throw .destinationExists(path: target)
        }
        if runner_renameat2(AT_FDCWD, path, AT_FDCWD, target, RUNNER_RENAME_EXCHANGE) == 0 {
            // `path` now holds the old tree.
            settled = true
            FileSystem.removeTree(path)
            return
        }
        // No RENAME_EXCHANGE: move the old tree aside, then rename.
        let aside = FileSystem.siblingName(of: target, tag: "old")
        guard rename(target, aside) == 0 else { throw systemError("could not move the old tree aside", target) }
        guard rename(path, target) == 0 else {
            let failure = systemError("could not rename into place", target)
            rename(aside, target)
            throw failure
        }
        settled = true
        FileSystem.removeTree(aside)
    }

    /// Removes the staging directory.
    public func discard() {
        guard !settled else { return }
        settled = true
        FileSystem.removeTree(path)
    }
}

/// The state of one extraction into a staging directory.
struct Extraction {
    enum Node {
        case directory
        case file
        case symlink
        case other
    }

    struct Fixup {
        var permissions: UInt32
        var uid: UInt32?
        var gid: UInt32?
        var modificationTime: Int64?
        var attributes: [ExtendedAttribute]
    }

    let reader: ArchiveReader
    let staging: String
    let policy: ExtractionPolicy
    let rootFD: Int32
    var nodes: [String: Node] = [:]
    var directoryFDs: [String: Int32] = [:]
    /// Directory metadata, applied deepest first at the end (after their contents are written).
    var fixups: [String: Fixup] = [:]
    var summary = ExtractionSummary()

    init(reader: ArchiveReader, staging: String, policy: ExtractionPolicy) throws(ArchiveError) {
        self.reader = reader
        self.staging = staging
        self.policy = policy
        let fd = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw systemError("could not open", staging) }
        self.rootFD = fd
        nodes[""] = .directory
        fixups[""] = Fixup(permissions: 0o755, attributes: [])
    }

    mutating func closeAll() {
        for fd in directoryFDs.values { close(fd) }
        directoryFDs.removeAll()
        close(rootFD)
    }

    func refused(_ entry: String, _ rule: ExtractionRule, _ detail: String = "") -> ArchiveError {
        .refused(archive: reader.name, entry: entry, rule: rule, detail: detail)
    }

    mutating func run(progress: ((ExtractionSummary) -> Void)?) throws(ArchiveError) {
        while let raw = try reader.nextRaw() {
            let (entry, validName) = ArchiveEntry.decode(raw, withExtendedAttributes: policy.applyExtendedAttributes)
            summary.entries += 1
            try extract(entry, validName: validName)
            if let progress, summary.entries % 1000 == 0 { progress(summary) }
        }
        try applyFixups()
        progress?(summary)
    }

    mutating func extract(_ entry: ArchiveEntry, validName: Bool) throws(ArchiveError) {
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
        switch entry.kind {
        case .socket: throw refused(name, .socket)
        case .characterDevice, .blockDevice:
            guard policy.allowDeviceNodes else {
                throw refused(name, .deviceNode, "\(entry.kind.rawValue) \(entry.deviceMajor),\(entry.deviceMinor)")
            }
        case .fifo:
            guard policy.allowFifos else { throw refused(name, .fifo) }
        default: break
        }
        if entry.permissions & 0o6000 != 0 && entry.kind != .symlink && !policy.allowSetuidSetgid {
            throw refused(name, .setuidSetgid, "mode \(String(entry.permissions, radix: 8))")
        }
        if entry.kind == .regularFile {
            guard entry.size <= policy.maxEntrySize else {
                throw refused(name, .entryTooLarge, "\(entry.size) bytes, the cap is \(policy.maxEntrySize)")
            }
            guard summary.contentBytes + entry.size <= policy.maxTotalSize else {
                throw refused(name, .totalTooLarge, "more than \(policy.maxTotalSize) bytes in total")
            }
        }
        if components.isEmpty {
            guard entry.kind == .directory else {
                throw refused(name, .invalidName, "names the root but is not a directory")
            }
            fixups[""] = fixup(for: entry)
            return
        }
        if directoryFDs.count > 256 {
            for fd in directoryFDs.values { close(fd) }
            directoryFDs.removeAll(keepingCapacity: true)
        }
        let parentFD = try directoryFD(components.dropLast(), entry: name)
        let path = components.joined(separator: "/")
        let last = String(components[components.count - 1])
        if let existing = nodes[path] {
            if case .directory = existing, entry.kind == .directory {
                fixups[path] = fixup(for: entry)
                return
            }
            throw refused(name, .duplicateEntry, "\(path) was extracted before")
        }
        switch entry.kind {
        case .directory:
            guard mkdirat(parentFD, last, 0o700) == 0 else { throw systemError("could not create", display(path)) }
            nodes[path] = .directory
            fixups[path] = fixup(for: entry)
        case .regularFile:
            try writeFile(entry, path: path, parentFD: parentFD, name: last)
            nodes[path] = .file
        case .symlink:
            let target = entry.linkTarget ?? ""
            guard
                ArchivePath.symlinkStaysInside(
                    linkDirectory: Array(components.dropLast()), target: target,
                    rooted: policy.absoluteSymlinks == .rootedAtTarget)
            else {
                throw refused(name, .symlinkEscape, "it points at '\(target)'")
            }
            guard symlinkat(target, parentFD, last) == 0 else { throw systemError("could not create", display(path)) }
            nodes[path] = .symlink
            try finishNode(entry, parentFD: parentFD, name: last, path: path, isSymlink: true)
        case .hardlink:
            let target = entry.linkTarget ?? ""
            let targetComponents: [Substring]
            do throws(ExtractionRule) {
                targetComponents = try ArchivePath.components(target)
            } catch {
                throw refused(name, .hardlinkEscape, "it points at '\(target)' (\(error.summary))")
            }
            let targetPath = targetComponents.joined(separator: "/")
            guard let node = nodes[targetPath], !targetComponents.isEmpty else {
                throw refused(name, .hardlinkEscape, "it points at '\(target)', which was not extracted before it")
            }
            if case .directory = node { throw refused(name, .hardlinkEscape, "it points at the directory '\(target)'") }
            let targetParent = try directoryFD(targetComponents.dropLast(), entry: name)
            guard linkat(targetParent, String(targetComponents[targetComponents.count - 1]), parentFD, last, 0) == 0
            else { throw systemError("could not create the hardlink", display(path)) }
            nodes[path] = node
        case .characterDevice, .blockDevice, .fifo:
            let type: mode_t =
                switch entry.kind {
                case .characterDevice: S_IFCHR
                case .blockDevice: S_IFBLK
                default: S_IFIFO
                }
            let device = runner_makedev(entry.deviceMajor, entry.deviceMinor)
            guard mknodat(parentFD, last, type | mode_t(entry.permissions & 0o7777), device) == 0 else {
                throw systemError("could not create the \(entry.kind.rawValue)", display(path))
            }
            nodes[path] = .other
            try finishNode(entry, parentFD: parentFD, name: last, path: path, isSymlink: false)
        case .socket:
            throw refused(name, .socket)
        }
    }

    func display(_ path: String) -> String { staging + "/" + path }

    func fixup(for entry: ArchiveEntry) -> Fixup {
        Fixup(
            permissions: entry.permissions,
            uid: policy.applyOwnership ? entry.uid : nil,
            gid: policy.applyOwnership ? entry.gid : nil,
            modificationTime: policy.restoreModificationTimes ? entry.modificationTime : nil,
            attributes: policy.applyExtendedAttributes ? entry.extendedAttributes : [])
    }

    /// The descriptor of the directory at `components` (relative to the staging root),
    /// creating missing directories (0755 once finished). Refuses a path through a symlink
    /// or a non-directory.
    mutating func directoryFD(_ components: ArraySlice<Substring>, entry: String) throws(ArchiveError) -> Int32 {
        if components.isEmpty { return rootFD }
        let key = components.joined(separator: "/")
        if let fd = directoryFDs[key] { return fd }
        let parentFD = try directoryFD(components.dropLast(), entry: entry)
        let name = String(components[components.endIndex - 1])
        switch nodes[key] {
        case .symlink?:
            throw refused(entry, .throughSymlink, "'\(key)' is a symlink")
        case .file?, .other?:
            throw refused(entry, .notADirectory, "'\(key)' is not a directory")
        case nil:
            guard mkdirat(parentFD, name, 0o700) == 0 else { throw systemError("could not create", display(key)) }
            nodes[key] = .directory
            fixups[key] = Fixup(permissions: 0o755, attributes: [])
        case .directory?:
            break
        }
        let fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw systemError("could not open", display(key)) }
        directoryFDs[key] = fd
        return fd
    }

    mutating func writeFile(_ entry: ArchiveEntry, path: String, parentFD: Int32, name: String) throws(ArchiveError) {
        let fd = openat(parentFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw systemError("could not create", display(path)) }
        defer { close(fd) }
        var end: Int64 = 0
        let shown = display(path)
        let limit = entry.size
        try reader.readContent { (block, offset) throws(ArchiveError) in
            guard offset + Int64(block.count) <= limit else {
                throw ArchiveError.refused(
                    archive: reader.name, entry: entry.path, rule: .entryTooLarge,
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
            // A sparse file ending in a hole.
            guard ftruncate(fd, off_t(entry.size)) == 0 else { throw systemError("could not write", shown) }
        }
        summary.contentBytes += entry.size
        if policy.applyOwnership {
            guard fchown(fd, entry.uid, entry.gid) == 0 else { throw systemError("could not change the owner", shown) }
        }
        guard fchmod(fd, mode_t(entry.permissions & 0o7777)) == 0 else {
            throw systemError("could not change the mode", shown)
        }
        if policy.applyExtendedAttributes {
            for attribute in entry.extendedAttributes {
                let result = attribute.value.withUnsafeBytes {
                    fsetxattr(fd, attribute.name, $0.baseAddress, $0.count, 0)
                }
                guard result == 0 else { throw systemError("could not set \(attribute.name)", shown) }
            }
        }
        if policy.restoreModificationTimes {
            var times = [timespec](repeating: timespec(tv_sec: time_t(entry.modificationTime), tv_nsec: 0), count: 2)
            guard futimens(fd, &times) == 0 else { throw systemError("could not set the times", shown) }
        }
    }

    /// Ownership, mode, attributes and times of a node created by name (symlinks, devices, fifos).
    func finishNode(_ entry: ArchiveEntry, parentFD: Int32, name: String, path: String, isSymlink: Bool)
        throws(ArchiveError)
    {
        let shown = display(path)
        if policy.applyOwnership {
            guard fchownat(parentFD, name, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw systemError("could not change the owner", shown)
            }
        }
        if !isSymlink {
            guard fchmodat(parentFD, name, mode_t(entry.permissions & 0o7777), 0) == 0 else {
                throw systemError("could not change the mode", shown)
            }
            if policy.applyExtendedAttributes {
                for attribute in entry.extendedAttributes {
                    let result = attribute.value.withUnsafeBytes {
                        lsetxattr(shown, attribute.name, $0.baseAddress, $0.count, 0)
                    }
                    guard result == 0 else { throw systemError("could not set \(attribute.name)", shown) }
                }
            }
        }
        if policy.restoreModificationTimes {
            var times = [timespec](repeating: timespec(tv_sec: time_t(entry.modificationTime), tv_nsec: 0), count: 2)
            guard utimensat(parentFD, name, &times, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw systemError("could not set the times", shown)
            }
        }
    }

    /// Directory metadata, deepest first, so setting a directory's mode or time comes after
    /// everything inside it was written.
    mutating func applyFixups() throws(ArchiveError) {
        for fd in directoryFDs.values { close(fd) }
        directoryFDs.removeAll()
        let order = fixups.keys.sorted { $1.utf8.lexicographicallyPrecedes($0.utf8) }
        for path in order {
            guard let fixup = fixups[path] else { continue }
            let shown = path.isEmpty ? staging : display(path)
            let fd = path.isEmpty ? rootFD : openat(rootFD, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw systemError("could not open", shown) }
            defer { if fd != rootFD { close(fd) } }
            if let uid = fixup.uid, let gid = fixup.gid {
                guard fchown(fd, uid, gid) == 0 else { throw systemError("could not change the owner", shown) }
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
            if let time = fixup.modificationTime {
                var times = [timespec](repeating: timespec(tv_sec: time_t(time), tv_nsec: 0), count: 2)
                guard futimens(fd, &times) == 0 else { throw systemError("could not set the times", shown) }
            }
        }
    }
}
