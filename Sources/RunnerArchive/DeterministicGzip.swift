import CLibArchive

/// Deterministic gzip of bytes in memory (a single stream, not a tar archive): no timestamp, no
/// file name, no padding. The same bytes in give the same bytes out (for a given zlib), so
/// gzip'd output can be pinned and golden-tested (cloud-init user-data).
public enum DeterministicGzip {
    /// Compresses `input` at `level` (1–9). `name` names the data in error messages.
    public static func compress(_ input: [UInt8], level: Int = 9, name: String = "gzip") throws(ArchiveError)
        -> [UInt8]
    {
        guard (1...9).contains(level) else {
            throw .invalidArgument(name: "gzip level", problem: "\(level) is not between 1 and 9")
        }
        try ArchiveLibrary.load()
        guard let archive = archive_write_new() else {
            throw .library(archive: name, entry: nil, operation: "archive_write_new", message: "out of memory")
        }
        defer { archive_write_free(archive) }
        // libarchive writes into this memory until close, so it must outlive every call below.
        // gzip never grows data by more than a few bytes per 16 KiB block plus its header.
        let capacity = input.count + input.count / 100 + 1024
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
        defer { buffer.deallocate() }
        var used = 0
        let context = ArchiveContext(archive: name)
        // Every warning is a failure too: output that is not exactly what was asked for is not
        // reproducible.
        func check(_ code: Int32, _ operation: String) throws(ArchiveError) {
            try RunnerArchive.check(code, archive, operation, context, warningIsError: true)
        }
        try check(archive_write_set_format_raw(archive), "set format raw")
        try check(archive_write_add_filter_gzip(archive), "add filter gzip")
        try check(
            archive_write_set_options(archive, "gzip:!timestamp,gzip:compression-level=\(level)"), "set gzip options")
        try check(archive_write_set_bytes_in_last_block(archive, 1), "set last block size")
        try check(archive_write_open_memory(archive, buffer.baseAddress, capacity, &used), "open in memory")
        guard let entry = archive_entry_new() else {
            throw .library(archive: name, entry: nil, operation: "archive_entry_new", message: "out of memory")
        }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, name)
        archive_entry_set_filetype(entry, 0o100000)  // AE_IFREG
        archive_entry_set_size(entry, la_int64_t(input.count))
        try check(archive_write_header(archive, entry), "write header")
        let written = input.withUnsafeBytes { raw in archive_write_data(archive, raw.baseAddress, raw.count) }
        try checkCount(written, archive, "write data", context)
        guard written == input.count else {
            throw .library(
                archive: name, entry: nil, operation: "write data",
                message: "libarchive wrote \(written) of \(input.count) bytes")
        }
        try check(archive_write_close(archive), "close")
        return Array(buffer[..<used])
    }
}
