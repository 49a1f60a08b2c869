#if canImport(Glibc)
    import Glibc
#endif

/// The process's standard input.
public enum StandardInput {
    /// Reads stdin to EOF on a thread of its own (a `read(2)` on a pipe the writer keeps open
    /// would otherwise hold one of the cooperative pool's threads, on 2 cores half of them);
    /// what was read when a read fails.
    public static func read() async -> [UInt8] {
        await read(fileDescriptor: 0)
    }

    /// Reads `fileDescriptor` to EOF on a thread of its own (retrying on EINTR); what was read
    /// when a read fails. The descriptor stays open.
    package static func read(fileDescriptor: Int32) async -> [UInt8] {
        await DedicatedThread.run { readBlocking(fileDescriptor) }
    }

    private static func readBlocking(_ fileDescriptor: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return bytes
    }
}
