import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// TCP probes and binds on this host's addresses.
package enum TCPSocket {
    /// Whether something accepts TCP connections on 127.0.0.1:`port` (one attempt).
    package static func accepts(port: UInt16) -> Bool {
        guard let fd = connectLoopback(port: port) else { return false }
        close(fd)
        return true
    }

    /// A TCP connection to 127.0.0.1:`port` (close-on-exec), or nil when nothing accepts it.
    package static func connectLoopback(port: UInt16) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// A socket address for an IP literal (nil: the IPv6 wildcard, dual-stack) and a port.
    package static func socketAddress(_ address: String?, port: UInt16) -> (family: Int32, storage: sockaddr_storage)? {
        var storage = sockaddr_storage()
        var v4 = in_addr()
        if let address, inet_pton(AF_INET, address, &v4) == 1 {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    sin.pointee.sin_family = sa_family_t(AF_INET)
                    sin.pointee.sin_port = port.bigEndian
                    sin.pointee.sin_addr = v4
                }
            }
            return (AF_INET, storage)
        }
        var v6 = in6addr_any
        if let address, inet_pton(AF_INET6, address, &v6) != 1 { return nil }
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                sin.pointee.sin6_family = sa_family_t(AF_INET6)
                sin.pointee.sin6_port = port.bigEndian
                sin.pointee.sin6_addr = v6
            }
        }
        return (AF_INET6, storage)
    }

    /// Whether a TCP listener could bind `address` (nil: every address, IPv4 and IPv6) and
    /// `port` now: the bind a proxy or a service would do, tried and undone. Only "address in
    /// use" counts as taken: an unprivileged caller cannot bind ports below 1024 (EACCES), and
    /// the privileged helper checks again.
    package static func portIsFree(address: String?, port: UInt16) -> Bool {
        guard var (family, storage) = socketAddress(address, port: port) else { return false }
        var fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0, address == nil {
            // No IPv6 on this host: the IPv4 wildcard.
            guard let v4 = socketAddress("0.0.0.0", port: port) else { return false }
            (family, storage) = v4
            fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        var zero: Int32 = 0
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if family == AF_INET6 && address == nil {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
        }
        let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        if rc != 0 { return errno != EADDRINUSE }
        return listen(fd, 1) == 0 || errno != EADDRINUSE
    }

    /// What a TCP connection to a port finds.
    package enum Probe: Equatable, Sendable {
        /// Nothing listens.
        case refused
        /// Something accepted and closed at once (a socket-activated proxy whose backend is not up).
        case closed
        /// The connection stayed open (or the peer spoke first).
        case open
    }

    /// Connects to `address`:`port` (nil: 127.0.0.1) and watches the connection for `wait` seconds.
    package static func probe(address: String?, port: UInt16, wait: Double) -> Probe {
        guard let (family, storage) = socketAddress(address ?? "127.0.0.1", port: port) else { return .refused }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .refused }
        defer { close(fd) }
        let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
        var target = storage
        let rc = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        guard rc == 0 else { return .refused }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = Glibc.poll(&entry, 1, Int32(wait * 1000))
        guard ready > 0 else { return .open }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n > 0 ? .open : .closed
    }
}
