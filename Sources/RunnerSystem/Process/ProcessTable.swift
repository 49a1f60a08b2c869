import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Facts about processes, read from `/proc` without Foundation.
package enum ProcessTable {
    /// The start time of `pid` (field 22 of `/proc/PID/stat`), or nil when it is gone or a zombie.
    package static func startTime(of pid: Int32) -> UInt64? {
        guard pid > 0, let bytes = readSmall("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return UInt64(fields[19])
    }

    /// Whether `pid` is alive and, when `startTime` is given, still the same process.
    package static func isAlive(_ pid: Int32, startTime expected: UInt64?) -> Bool {
        guard let actual = startTime(of: pid) else { return false }
        return expected == nil || expected == actual
    }

    /// The first bytes of a small file (`/proc` entries), without Foundation.
    package static func readSmall(_ path: String, limit: Int = 4096) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: limit)
        var count = 0
        while count < limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress?.advanced(by: count), limit - count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            count += n
        }
        return Array(buffer[0..<count])
    }

    /// The `comm` name of `pid`.
    package static func comm(of pid: Int32) -> String {
        guard let bytes = readSmall("/proc/\(pid)/comm", limit: 64) else { return "" }
        return String(decoding: bytes.prefix { $0 != 10 }, as: UTF8.self)
    }

    /// The NUL-separated command line of `pid`.
    package static func commandLine(of pid: Int32) -> [String] {
        guard let bytes = readSmall("/proc/\(pid)/cmdline", limit: 65536) else { return [] }
        return bytes.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    /// The parent PID of `pid` (field 4 of `/proc/<pid>/stat`), or nil when it is gone.
    package static func parent(of pid: Int32) -> Int32? {
        guard let bytes = readSmall("/proc/\(pid)/stat", limit: 1024) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    /// The PIDs whose parent is `pid`.
    package static func children(of pid: Int32) -> [Int32] {
        allPIDs().filter { parent(of: $0) == pid }
    }

    /// Every numeric entry of `/proc`.
    package static func allPIDs() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var pids: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if let pid = Int32(name) { pids.append(pid) }
        }
        return pids
    }
}
