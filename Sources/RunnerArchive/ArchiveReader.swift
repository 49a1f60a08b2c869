import CLibArchive

#if canImport(Glibc)
    import Glibc
#endif

/// A streaming tar reader over libarchive: gzip, zstd, xz, bzip2 or no compression; ustar,
/// pax and GNU tar. Entries come one at a time; the content of the current entry can be read
/// once, before moving on. Not thread-safe: one reader, one task.
public final class ArchiveReader {
    let archive: OpaquePointer
    private let fd: Int32
    /// The archive's path, for error messages.
    public let name: String
    /// The current entry's libarchive header (valid until the next ``next()``).
    private(set) var current: OpaquePointer?
    private(set) var currentPath: String?

    /// Opens the archive file at `path`.
    public init(path: String) throws(ArchiveError) {
        _ = utf8LocaleReady
        try ArchiveLibrary.load()
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw systemError("could not open", path) }
        guard let archive = archive_read_new() else {
            close(fd)
            throw .library(archive: path, entry: nil, operation: "archive_read_new", message: "out of memory")
        }
        self.fd = fd
        self.archive = archive
        self.name = path
        let context = ArchiveContext(archive: path)
        try check(archive_read_support_filter_gzip(archive), archive, "support gzip", context)
        try check(archive_read_support_filter_zstd(archive), archive, "support zstd", context)
        try check(archive_read_support_filter_xz(archive), archive, "support xz", context)
        try check(archive_read_support_filter_bzip2(archive), archive, "support bzip2", context)
        try check(archive_read_support_filter_none(archive), archive, "support no compression", context)
        try check(archive_read_support_format_tar(archive), archive, "support tar", context)
        try check(archive_read_open_fd(archive, fd, 1 << 20), archive, "open", context)
    }

    deinit {
        archive_read_free(archive)
        close(fd)
    }

    /// The next entry's header, or nil at the end of the archive. Extended attributes are
    /// decoded only when asked for.
    public func next(withExtendedAttributes: Bool = true) throws(ArchiveError) -> ArchiveEntry? {
        guard let raw = try nextRaw() else { return nil }
        return ArchiveEntry.decode(raw, withExtendedAttributes: withExtendedAttributes).0
    }

    /// Advances to the next header; nil at the end.
    func nextRaw() throws(ArchiveError) -> OpaquePointer? {
        var entry: OpaquePointer?
        let code = archive_read_next_header(archive, &entry)
        if code == ARCHIVE_EOF {
            current = nil
            return nil
        }
        try check(code, archive, "read the next header", ArchiveContext(archive: name, entry: afterEntry))
        current = entry
        currentPath = entry.flatMap { text(archive_entry_pathname_utf8($0)) ?? text(archive_entry_pathname($0)) }
        return entry
    }

    /// For errors while reading a header: the entry before it, if any.
    private var afterEntry: String? { currentPath.map { "after \($0)" } }

    /// Streams the current entry's content to `body` as (bytes, offset) blocks, in order.
    /// Offsets skip holes of sparse files.
    public func readContent(_ body: (UnsafeRawBufferPointer, Int64) throws(ArchiveError) -> Void) throws(ArchiveError) {
        let context = ArchiveContext(archive: name, entry: currentPath)
        while true {
            var block: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            let code = archive_read_data_block(archive, &block, &size, &offset)
            if code == ARCHIVE_EOF { return }
            try check(code, archive, "read data", context, warningIsError: true)
            if size > 0, let block {
                try body(UnsafeRawBufferPointer(start: block, count: size), offset)
            }
        }
    }

    /// The current entry's whole content, refusing more than `limit` bytes.
    public func readContent(limit: Int) throws(ArchiveError) -> [UInt8] {
        var bytes: [UInt8] = []
        let path = currentPath ?? ""
        try readContent { (block, offset) throws(ArchiveError) in
            let end = Int(offset) + block.count
            guard end <= limit else {
                throw .refused(archive: name, entry: path, rule: .entryTooLarge, detail: "more than \(limit) bytes")
            }
            if bytes.count < Int(offset) {
                bytes.append(contentsOf: repeatElement(0, count: Int(offset) - bytes.count))
            }
            bytes.append(contentsOf: block)
        }
        return bytes
    }

    /// Every entry's header, in archive order (contents are skipped).
    public static func list(_ path: String) throws(ArchiveError) -> [ArchiveEntry] {
        let reader = try ArchiveReader(path: path)
        var entries: [ArchiveEntry] = []
        while let entry = try reader.next() { entries.append(entry) }
        return entries
    }

    /// The content of the regular-file member `member` (compared in normal form: `./a` = `a`),
    /// reading no further than needed. Refuses more than `limit` bytes.
    public static func readMember(_ member: String, from path: String, limit: Int = 64 << 20) throws(ArchiveError)
        -> [UInt8]
    {
        let (reader, _) = try seekRegularFile(member, in: path)
        return try reader.readContent(limit: limit)
    }

    /// A reader positioned at the regular-file member `member` (compared in normal form), and
    /// that member's entry; an error when the member is missing or is not a regular file.
    static func seekRegularFile(_ member: String, in path: String) throws(ArchiveError) -> (ArchiveReader, ArchiveEntry)
    {
        let reader = try ArchiveReader(path: path)
        let wanted = (try? ArchivePath.normalized(member)) ?? member
        while let entry = try reader.next(withExtendedAttributes: false) {
            guard (try? ArchivePath.normalized(entry.path)) == wanted else { continue }
            guard entry.kind == .regularFile else {
                throw .unsupportedSource(
                    path: "\(path): \(entry.path)", problem: "is a \(entry.kind.rawValue), not a file")
            }
            return (reader, entry)
        }
        throw .memberNotFound(archive: path, member: member)
    }

    /// Copies the regular-file member `member` to `destination` (temporary file + rename, the
    /// member's permission bits without setuid/setgid), streaming. Refuses more than `limit` bytes.
    public static func extractMember(
        _ member: String,
        from path: String,
        to destination: String,
        limit: Int64 = 8 << 30
    ) throws(ArchiveError) {
        let (reader, entry) = try seekRegularFile(member, in: path)
        guard entry.size <= limit else {
            throw .refused(
                archive: path, entry: entry.path, rule: .entryTooLarge, detail: "\(entry.size) bytes > \(limit)")
        }
        let temporary = FileSystem.siblingName(of: destination, tag: "tmp")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw systemError("could not create", temporary) }
        var done = false
        defer {
            close(fd)
            if !done { unlink(temporary) }
        }
        try reader.readContent { (block, offset) throws(ArchiveError) in
            guard pwrite(fd, block.baseAddress, block.count, off_t(offset)) == block.count else {
                throw systemError("could not write", temporary)
            }
        }
        guard ftruncate(fd, off_t(entry.size)) == 0, fchmod(fd, mode_t(entry.permissions & 0o1777)) == 0,
            fsync(fd) == 0
        else { throw systemError("could not finish", temporary) }
        guard rename(temporary, destination) == 0 else {
            throw systemError("could not rename into place", destination)
        }
        done = true
    }
}
