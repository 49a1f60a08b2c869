import CLibArchive

#if canImport(Glibc)
    import Glibc
#endif

/// The compression filter of a written archive.
public enum ArchiveCompression: Sendable, Hashable, CustomStringConvertible {
    case none
    /// gzip without a timestamp or file name in its header, at a fixed level (1–9).
    case gzip(level: Int)
    /// zstd at a fixed level (1–19).
    case zstd(level: Int)

    /// gzip level 6 (gzip's and bsdtar's default): what bundles use.
    public static let defaultGzip = ArchiveCompression.gzip(level: 6)

    /// The compression a file name implies: `.tar.gz`/`.tgz` → gzip 6, `.tar.zst` → zstd 3,
    /// `.tar` → none; nil for anything else.
    public init?(fileName: String) {
        if fileName.hasSuffix(".tar.gz") || fileName.hasSuffix(".tgz") {
            self = .gzip(level: 6)
        } else if fileName.hasSuffix(".tar.zst") || fileName.hasSuffix(".tzst") {
            self = .zstd(level: 3)
        } else if fileName.hasSuffix(".tar") {
            self = .none
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .gzip(let level): "gzip-\(level)"
        case .zstd(let level): "zstd-\(level)"
        }
    }
}

/// A streaming tar writer over libarchive: restricted pax format, one compression filter,
/// no padding after the last block. It writes exactly the headers it is given; the
/// reproducible and full-fidelity policies live in ``ReproducibleArchive`` and
/// ``TreeArchiver``. Not thread-safe: one writer, one task.
public final class ArchiveWriter {
    private let archive: OpaquePointer
    private let entry: OpaquePointer
    private let buffer: UnsafeMutableRawBufferPointer
    private var finished = false
    /// The name used in error messages (the archive's path).
    public let name: String
    /// Entries written so far.
    public private(set) var entryCount = 0
    /// Content bytes written so far (before compression).
    public private(set) var contentBytes: Int64 = 0

    /// Size of the buffer files are copied through.
    static let bufferSize = 1 << 20

    /// Starts an archive on `fileDescriptor`, which stays owned by the caller.
    public init(fileDescriptor: Int32, name: String, compression: ArchiveCompression) throws(ArchiveError) {
        _ = utf8LocaleReady
        try ArchiveLibrary.load()
        guard let archive = archive_write_new() else {
            throw .library(archive: name, entry: nil, operation: "archive_write_new", message: "out of memory")
        }
        guard let entry = archive_entry_new() else {
            archive_write_free(archive)
            throw .library(archive: name, entry: nil, operation: "archive_entry_new", message: "out of memory")
        }
        self.archive = archive
        self.entry = entry
        self.name = name
        self.buffer = .allocate(byteCount: Self.bufferSize, alignment: 16)
        let context = ArchiveContext(archive: name)
        try check(archive_write_set_format_pax_restricted(archive), archive, "set format pax restricted", context)
        switch compression {
        case .none:
            try check(archive_write_add_filter_none(archive), archive, "add filter none", context)
        case .gzip(let level):
            try check(archive_write_add_filter_gzip(archive), archive, "add filter gzip", context)
            try check(
                archive_write_set_filter_option(archive, "gzip", "compression-level", "\(level)"), archive,
                "set gzip level \(level)", context)
            // "!timestamp": no mtime in the gzip header (and libarchive writes no file name).
            try check(
                archive_write_set_filter_option(archive, "gzip", "timestamp", nil), archive,
                "disable the gzip timestamp", context)
        case .zstd(let level):
            try check(archive_write_add_filter_zstd(archive), archive, "add filter zstd", context)
            try check(
                archive_write_set_filter_option(archive, "zstd", "compression-level", "\(level)"), archive,
                "set zstd level \(level)", context)
        }
        try check(archive_write_set_bytes_per_block(archive, 64 * 1024), archive, "set block size", context)
        try check(archive_write_set_bytes_in_last_block(archive, 1), archive, "set last block size", context)
        try check(archive_write_open_fd(archive, fileDescriptor), archive, "open for writing", context)
    }

    deinit {
        if !finished { archive_write_fail(archive) }
        archive_write_free(archive)
        archive_entry_free(entry)
        buffer.deallocate()
    }

    /// Writes a header. For a regular file, exactly `header.size` bytes of content must follow
    /// through ``writeContent(_:)``.
    public func writeHeader(_ header: ArchiveEntry) throws(ArchiveError) {
        header.encode(into: entry)
        try check(
            archive_write_header(archive, entry), archive, "write header",
            ArchiveContext(archive: name, entry: header.path),
            warningIsError: true)
        entryCount += 1
    }

    /// Writes content bytes of the current entry.
    public func writeContent(_ bytes: UnsafeRawBufferPointer, entry path: String) throws(ArchiveError) {
        var offset = 0
        while offset < bytes.count {
            let n = archive_write_data(archive, bytes.baseAddress?.advanced(by: offset), bytes.count - offset)
            let written = try checkCount(n, archive, "write data", ArchiveContext(archive: name, entry: path))
            if written == 0 { break }
            offset += written
        }
        contentBytes += Int64(bytes.count)
    }

    /// Writes an entry with in-memory content (`header.size` is set from `contents`).
    public func write(_ header: ArchiveEntry, contents: [UInt8]) throws(ArchiveError) {
        var header = header
        header.size = Int64(contents.count)
        try writeHeader(header)
        let result = contents.withUnsafeBytes { raw in
            Result { () throws(ArchiveError) in try writeContent(raw, entry: header.path) }
        }
        try result.get()
    }

    /// Writes a regular-file entry whose content is read from `fileDescriptor` (exactly
    /// `header.size` bytes; a file that shrinks or grows meanwhile is an error).
    public func write(_ header: ArchiveEntry, copyingFrom fileDescriptor: Int32, sourcePath: String)
        throws(ArchiveError)
    {
        try writeHeader(header)
        var remaining = header.size
        while remaining > 0 {
            let want = Int(min(Int64(buffer.count), remaining))
            let n = read(fileDescriptor, buffer.baseAddress, want)
            if n < 0 {
                if errno == EINTR { continue }
                throw systemError("could not read", sourcePath)
            }
            if n == 0 {
                throw .unsupportedSource(path: sourcePath, problem: "shrank while it was being archived")
            }
            try writeContent(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), entry: header.path)
            remaining -= Int64(n)
        }
        var probe: UInt8 = 0
        if read(fileDescriptor, &probe, 1) > 0 {
            throw .unsupportedSource(path: sourcePath, problem: "grew while it was being archived")
        }
    }

    /// Writes the end-of-archive marker and flushes the compressor. The file descriptor is
    /// not closed or synced.
    public func finish() throws(ArchiveError) {
        guard !finished else { return }
        finished = true
        try check(
            archive_write_close(archive), archive, "finish the archive", ArchiveContext(archive: name),
            warningIsError: true)
    }
}

/// Writing an archive file so that nothing half-written is ever seen at its path.
public enum ArchiveFile {
    /// Creates `path` through a temporary file beside it: `body` writes the entries, then the
    /// archive is finished, synced and renamed into place (mode 0644). Fails with
    /// ``ArchiveError/destinationExists(path:)`` when `path` exists and `replaceExisting` is false.
    public static func write<T>(
        to path: String,
        compression: ArchiveCompression,
        replaceExisting: Bool,
        _ body: (ArchiveWriter) throws(ArchiveError) -> T
    ) throws(ArchiveError) -> T {
        var st = stat()
        if !replaceExisting && lstat(path, &st) == 0 { throw .destinationExists(path: path) }
        let temporary = FileSystem.siblingName(of: path, tag: "tmp")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw systemError("could not create", temporary) }
        var done = false
        defer {
            close(fd)
            if !done { unlink(temporary) }
        }
        let result: T
        do {
            let writer = try ArchiveWriter(fileDescriptor: fd, name: path, compression: compression)
            result = try body(writer)
            try writer.finish()
        }
        guard fchmod(fd, 0o644) == 0, fsync(fd) == 0 else { throw systemError("could not sync", temporary) }
        if replaceExisting {
            guard rename(temporary, path) == 0 else { throw systemError("could not rename into place", path) }
        } else {
            if runner_renameat2(AT_FDCWD, temporary, AT_FDCWD, path, RUNNER_RENAME_NOREPLACE) != 0 {
                if errno == EEXIST { throw .destinationExists(path: path) }
                // File systems without RENAME_NOREPLACE: check, then rename.
                guard errno == EINVAL, lstat(path, &st) != 0, rename(temporary, path) == 0 else {
                    throw systemError("could not rename into place", path)
                }
            }
        }
        done = true
        return result
    }
}
