import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// A datagram socket that receives `sd_notify` messages (`NOTIFY_SOCKET`).
package final class NotifySocket: Sendable {
    package let path: String
    private let fd: Int32

    package init(path: String) throws(RunnerError) {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RunnerError.posix("could not create a notify socket", path, fix: nil) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw RunnerError(.invalidInput, input: path, problem: "the notify socket path is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let error = RunnerError.posix("could not bind the notify socket", path, fix: nil)
            close(fd)
            throw error
        }
    }

    /// Waits up to `timeout` seconds for one datagram; returns its lines, or nil on timeout.
    package func receive(timeout: Double) -> [String]? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = Glibc.poll(&pfd, 1, Int32(max(0, timeout * 1000)))
        guard rc > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard n > 0 else { return [] }
        return String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n").map(String.init)
    }

    deinit {
        close(fd)
        unlink(path)
    }
}
