#if canImport(Glibc)
    import Glibc
#endif

/// Unix stream sockets for the step relay: connect, pass descriptors (`SCM_RIGHTS`) and ask who
/// the peer is (`SO_PEERCRED`). Glibc only (no Foundation, no Dispatch): `runner-hook`, the
/// hook's fast client, uses it too; `RunnerSystem` adds `listen`.
package enum UnixSocket {
    /// The `sockaddr_un` for `path`; nil when the path does not fit (107 bytes).
    package static func address(_ path: String) -> sockaddr_un? {
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

    /// A connection to `path`, or nil when nothing listens there.
    package static func connect(path: String) -> Int32? {
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
    package static func peerUID(_ fd: Int32) -> uid_t? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (not imported without _GNU_SOURCE).
        var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, length == 12 else { return nil }
        return credentials.1
    }

    // cmsghdr on Linux: size_t len, int level, int type, then the data, 8-byte aligned.
    private static let headerSize = 16

    /// Sends a length-prefixed message with `descriptors` attached to its first byte.
    package static func send(_ fd: Int32, message: [UInt8], descriptors: [Int32]) -> Bool {
        let length = UInt32(message.count)
        let frame = [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
        return sendRaw(fd, frame + message, descriptors: descriptors)
    }

    /// Sends `bytes` with `descriptors` attached to the first byte.
    package static func sendRaw(_ fd: Int32, _ bytes: [UInt8], descriptors: [Int32]) -> Bool {
        var first = bytes
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
        if descriptors.isEmpty { control = [] }
        var sent = -1
        repeat {
            sent = withMessageHeader(data: &first, control: &control) { header in
                sendmsg(fd, &header, Int32(MSG_NOSIGNAL))
            }
        } while sent < 0 && errno == EINTR
        guard sent > 0 else { return false }
        return writeAll(fd, Array(first[sent...]))
    }

    /// Receives what has arrived (up to 64 KiB) and the descriptors that came with it
    /// (close-on-exec); nil on EOF or an error.
    package static func receiveRaw(_ fd: Int32, maxDescriptors: Int) -> (bytes: [UInt8], descriptors: [Int32])? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var control = [UInt8](repeating: 0, count: headerSize + ((maxDescriptors * 4 + 7) & ~7))
        var descriptors: [Int32] = []
        var controlLength = 0
        var received = -1
        repeat {
            received = withMessageHeader(data: &buffer, control: &control) { header in
                let n = recvmsg(fd, &header, Int32(MSG_CMSG_CLOEXEC))
                controlLength = header.msg_controllen
                return n
            }
        } while received < 0 && errno == EINTR
        if received >= 0, controlLength >= headerSize {
            control.withUnsafeBytes { raw in
                let length = raw.load(fromByteOffset: 0, as: Int.self)
                let level = raw.load(fromByteOffset: 8, as: Int32.self)
                let type = raw.load(fromByteOffset: 12, as: Int32.self)
                guard level == SOL_SOCKET, type == Int32(SCM_RIGHTS), length >= headerSize else { return }
                for index in 0..<min((length - headerSize) / 4, maxDescriptors) {
                    descriptors.append(raw.load(fromByteOffset: headerSize + index * 4, as: Int32.self))
                }
            }
        }
        guard received > 0 else {
            descriptors.forEach { close($0) }
            return nil
        }
        return (Array(buffer[..<received]), descriptors)
    }

    /// Receives one message sent by ``send(_:message:descriptors:)``; nil on EOF, error, or a
    /// message over `limit` bytes. Descriptors are close-on-exec.
    package static func receive(_ fd: Int32, limit: Int, maxDescriptors: Int) -> (
        message: [UInt8], descriptors: [Int32]
    )? {
        guard let first = receiveRaw(fd, maxDescriptors: maxDescriptors) else { return nil }
        let descriptors = first.descriptors
        var bytes = first.bytes
        let fail = { () -> (message: [UInt8], descriptors: [Int32])? in
            descriptors.forEach { close($0) }
            return nil
        }
        guard bytes.count >= 4 else { return fail() }
        let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard length <= limit else { return fail() }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count - 4 < length {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, length + 4 - bytes.count)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return fail() }
            bytes += buffer[0..<n]
        }
        guard bytes.count - 4 == length else { return fail() }
        return (Array(bytes[4...]), descriptors)
    }

    /// Calls `body` with a `msghdr` over `data` (one iovec) and `control` (none when empty).
    private static func withMessageHeader(
        data: inout [UInt8], control: inout [UInt8], _ body: (inout msghdr) -> Int
    ) -> Int {
        data.withUnsafeMutableBytes { dataBytes in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: dataBytes.baseAddress, iov_len: dataBytes.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    if controlBytes.count > 0 {
                        header.msg_control = controlBytes.baseAddress
                        header.msg_controllen = controlBytes.count
                    }
                    return body(&header)
                }
            }
        }
    }

    /// Writes all of `bytes`; false when the peer is gone.
    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress?.advanced(by: offset), $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
