import CLibArchive
import RunnerCore

/// Deterministic gzip through libarchive: no timestamp, no file name, level 9, no padding.
/// The same bytes in give the same bytes out (for a given zlib), so gzip'd user-data can be
/// pinned and golden-tested.
enum DeterministicGzip {
    static func compress(_ input: [UInt8]) throws(RunnerError) -> [UInt8] {
        guard let archive = archive_write_new() else {
            throw RunnerError(.internal, input: "gzip", problem: "libarchive could not allocate a writer")
        }
        defer { archive_write_free(archive) }
        // libarchive writes into this memory until close, so it must outlive every call below.
        let capacity = input.count + input.count / 100 + 1024
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
        defer { buffer.deallocate() }
        var used = 0
        func check(_ status: Int32, _ what: String) throws(RunnerError) {
            guard status == ARCHIVE_OK else {
                let message = archive_error_string(archive).map { String(cString: $0) } ?? "status \(status)"
                throw RunnerError(.internal, input: "gzip", problem: "\(what): \(message)")
            }
        }
        try check(archive_write_set_format_raw(archive), "raw format")
        try check(archive_write_add_filter_gzip(archive), "gzip filter")
        try check(archive_write_set_options(archive, "gzip:!timestamp,gzip:compression-level=9"), "gzip options")
        try check(archive_write_set_bytes_in_last_block(archive, 1), "block padding")
        try check(archive_write_open_memory(archive, buffer.baseAddress, capacity, &used), "open")
        guard let entry = archive_entry_new() else {
            throw RunnerError(.internal, input: "gzip", problem: "libarchive could not allocate an entry")
        }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, "user-data")
        archive_entry_set_filetype(entry, 0o100000)  // AE_IFREG
        archive_entry_set_size(entry, la_int64_t(input.count))
        try check(archive_write_header(archive, entry), "header")
        let written = input.withUnsafeBytes { raw in archive_write_data(archive, raw.baseAddress, raw.count) }
        guard written == input.count else {
            throw RunnerError(.internal, input: "gzip", problem: "libarchive wrote \(written) of \(input.count) bytes")
        }
        try check(archive_write_close(archive), "close")
        return Array(buffer[..<used])
    }
}
