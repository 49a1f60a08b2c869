import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Unix stream sockets for the step relay: listen, connect, pass descriptors (`SCM_RIGHTS`) and
/// ask who the peer is (`SO_PEERCRED`).
enum UnixSocket {
    /// The `sockaddr_un` for `path`; nil when the path does not fit (107 bytes).
    static func address(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// A listening socket at `path` (replacing a stale one), mode 0600, owned by `owner`.
    static func listen(path: String, owner: uid_t, group: gid_t) throws(RunnerError) -> Int32 {
        guard var address = address(path) else {
            throw RunnerError(.invalidInput, input: path, problem: "is too long for a Unix socket path")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RunnerError.posix("could not create a socket for", path, fix: nil) }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, chmod(path, 0o600) == 0, chown(path, owner, group) == 0, Glibc.listen(fd, 4) == 0 else {
            let error = RunnerError.posix("could not listen on", path, fix: nil)
            close(fd)
            unlink(path)
            throw error
        }
        return fd
    }

    /// A connection to `path`, or nil when nothing listens there.
    static func connect(path: String) -> Int32? {
        guard var address = address(path) else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// The user id of the process at the other end.
    static func peerUID(_ fd: Int32) -> uid_t? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (not imported without _GNU_SOURCE).
        var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, length == 12 else { return nil }
        return credentials.1
    }

    // cmsghdr on Linux: size_t len, int level, int type, then the data, 8-byte aligned.
    private static let headerSize = 16

    /// Sends a length-prefixed message with `descriptors` attached to its first byte.
    static func send(_ fd: Int32, message: [UInt8], descriptors: [Int32]) -> Bool {
        let length = UInt32(message.count)
        let frame = [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
        var first = frame + message
        let dataSize = descriptors.count * MemoryLayout<Int32>.size
        var control = [UInt8](repeating: 0, count: headerSize + ((dataSize + 7) & ~7))
        control.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: headerSize + dataSize, toByteOffset: 0, as: Int.self)
            raw.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
            raw.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: 12, as: Int32.self)
            for (index, descriptor) in descriptors.enumerated() {
                raw.storeBytes(of: descriptor, toByteOffset: headerSize + index * 4, as: Int32.self)
            }
        }
        let sent = first.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    if !descriptors.isEmpty {
                        header.msg_control = controlBytes.baseAddress
                        header.msg_controllen = controlBytes.count
                    }
                    return sendmsg(fd, &header, Int32(MSG_NOSIGNAL))
                }
            }
        }
        guard sent > 0 else { return false }
        return writeAll(fd, Array(first[sent...]))
    }

    /// Receives one message sent by ``send(_:message:descriptors:)``; nil on EOF, error, or a
    /// message over `limit` bytes. Descriptors are close-on-exec.
    static func receive(_ fd: Int32, limit: Int, maxDescriptors: Int) -> (message: [UInt8], descriptors: [Int32])? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var control = [UInt8](repeating: 0, count: headerSize + ((maxDescriptors * 4 + 7) & ~7))
        var descriptors: [Int32] = []
        let received = buffer.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    header.msg_control = controlBytes.baseAddress
                    header.msg_controllen = controlBytes.count
                    let n = recvmsg(fd, &header, Int32(MSG_CMSG_CLOEXEC))
                    if n >= 0, header.msg_controllen >= headerSize {
                        let length = controlBytes.load(fromByteOffset: 0, as: Int.self)
                        let level = controlBytes.load(fromByteOffset: 8, as: Int32.self)
                        let type = controlBytes.load(fromByteOffset: 12, as: Int32.self)
                        if level == SOL_SOCKET, type == Int32(SCM_RIGHTS), length >= headerSize {
                            let count = min((length - headerSize) / 4, maxDescriptors)
                            for index in 0..<count {
                                descriptors.append(
                                    controlBytes.load(fromByteOffset: headerSize + index * 4, as: Int32.self))
                            }
                        }
                    }
                    return n
                }
            }
        }
        guard received >= 4 else {
            descriptors.forEach { close($0) }
            return nil
        }
        let length = Int(buffer[0]) << 24 | Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
        guard length <= limit else {
            descriptors.forEach { close($0) }
            return nil
        }
        var message = Array(buffer[4..<received])
        while message.count < length {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, length - message.count)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                descriptors.forEach { close($0) }
                return nil
            }
            message += buffer[0..<n]
        }
        guard message.count == length else {
            descriptors.forEach { close($0) }
            return nil
        }
        return (message, descriptors)
    }

    /// Writes all of `bytes`; false when the peer is gone.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
