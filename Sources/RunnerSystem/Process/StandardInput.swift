#if canImport(Glibc)
    import Glibc
#endif

/// The process's standard input.
public enum StandardInput {
    /// Reads stdin to EOF (retrying on EINTR); what was read when a read fails.
    public static func readAll() -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return bytes
    }
}
