import FoundationEssentials
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Reads this process's environment.
public enum ProcessEnvironment {
    /// The value of `name`, or nil when unset or empty.
    public static func value(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        let value = String(cString: raw)
        return value.isEmpty ? nil : value
    }

    /// The whole environment as a dictionary.
    public static var all: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            pointer += 1
        }
        return result
    }
}

/// Process facts from `/proc`, spawning without waiting, and small socket helpers.
enum Posix {
    /// The start time of `pid` (field 22 of `/proc/PID/stat`), or nil when it is gone or a zombie.
    static func startTime(of pid: Int32) -> UInt64? {
        guard pid > 0, let bytes = readSmall("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return UInt64(fields[19])
    }

    /// Whether `pid` is alive and, when `startTime` is given, still the same process.
    static func isAlive(_ pid: Int32, startTime expected: UInt64?) -> Bool {
        guard let actual = startTime(of: pid) else { return false }
        return expected == nil || expected == actual
    }

    /// The first bytes of a small file (`/proc` entries), without Foundation.
    static func readSmall(_ path: String, limit: Int = 4096) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: limit)
        var count = 0
        while count < limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, limit - count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            count += n
        }
        return Array(buffer[0..<count])
    }

    /// The `comm` name of `pid`.
    static func comm(of pid: Int32) -> String {
        guard let bytes = readSmall("/proc/\(pid)/comm", limit: 64) else { return "" }
        return String(decoding: bytes.prefix { $0 != 10 }, as: UTF8.self)
    }

    /// The NUL-separated command line of `pid`.
    static func commandLine(of pid: Int32) -> [String] {
        guard let bytes = readSmall("/proc/\(pid)/cmdline", limit: 65536) else { return [] }
        return bytes.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    /// The parent PID of `pid` (field 4 of `/proc/<pid>/stat`), or nil when it is gone.
    static func parent(of pid: Int32) -> Int32? {
        guard let bytes = readSmall("/proc/\(pid)/stat", limit: 1024) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    /// The PIDs whose parent is `pid`.
    static func children(of pid: Int32) -> [Int32] {
        allPIDs().filter { parent(of: $0) == pid }
    }

    /// Every numeric entry of `/proc`.
    static func allPIDs() -> [Int32] {
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

    /// Where a spawned child's standard streams go.
    enum Stream {
        case inherit
        case devNull
        case file(String)
        /// A pipe the parent fills with these bytes and closes (stdin only).
        case bytes([UInt8])
        /// A descriptor of ours (close-on-exec or not), duplicated into the child.
        case descriptor(Int32)
    }

    /// Spawns `command` without waiting. `newSession`: setsid (a daemon that outlives us);
    /// `newProcessGroup`: terminal signals reach us only, and we forward them.
    static func spawn(
        _ command: Command,
        stdin: Stream = .devNull,
        stdout: Stream = .inherit,
        stderr: Stream = .inherit,
        newSession: Bool = false,
        newProcessGroup: Bool = false
    ) throws(RunnerError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var pipeFDs: [Int32] = [-1, -1]
        if case .bytes = stdin {
            guard pipe(&pipeFDs) == 0 else {
                throw RunnerError.posix("could not create a pipe", command.executable, fix: nil)
            }
            _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC)
            posix_spawn_file_actions_adddup2(&actions, pipeFDs[0], 0)
        }
        for (fd, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .inherit, .bytes: break
            case .devNull:
                posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            case .descriptor(let source):
                posix_spawn_file_actions_adddup2(&actions, source, fd)
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newSession {
            flags |= 0x80  // POSIX_SPAWN_SETSID (glibc ≥ 2.26)
        } else if newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        var environment = command.clearsEnvironment ? [:] : ProcessEnvironment.all
        for (key, value) in command.environment {
            environment[key] = value
        }
        let envStrings = environment.map { "\($0.key)=\($0.value)" }
        let executable = resolve(command.executable, path: environment["PATH"] ?? ProcessEnvironment.value("PATH"))
        var argv = command.argv.map { strdup($0) } + [nil]
        var envp = envStrings.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, &argv, &envp)
        if case .bytes(let bytes) = stdin {
            close(pipeFDs[0])
            if rc == 0 {
                var offset = 0
                while offset < bytes.count {
                    let n = bytes.withUnsafeBytes { write(pipeFDs[1], $0.baseAddress! + offset, $0.count - offset) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    offset += n
                }
            }
            close(pipeFDs[1])
        }
        guard rc == 0 else {
            errno = rc
            throw RunnerError.posix("could not start", command.executable, fix: "check that it is installed")
        }
        return pid
    }

    /// Finds `name` on `path` (or the usual system directories) unless it contains a slash.
    static func resolve(_ name: String, path: String?) -> String {
        if name.contains("/") { return name }
        let directories =
            (path ?? "").split(separator: ":").map(String.init) + [
                "/usr/local/sbin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
            ]
        for directory in directories where access(directory + "/" + name, X_OK) == 0 {
            return directory + "/" + name
        }
        return name
    }

    /// Waits for a child and returns its status (EINTR retried).
    static func wait(_ pid: pid_t) -> ExitStatus {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .exited(127) }
        }
        return decode(status)
    }

    /// The status of a child that has exited, or nil while it runs.
    static func poll(_ pid: pid_t) -> ExitStatus? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        if rc == pid { return decode(status) }
        if rc < 0 && errno == ECHILD { return .exited(127) }
        return nil
    }

    static func decode(_ status: Int32) -> ExitStatus {
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` (one attempt).
    static func tcpAccepts(port: UInt16) -> Bool {
        guard let fd = connectLoopback(port: port) else { return false }
        close(fd)
        return true
    }

    /// A TCP connection to 127.0.0.1:`port` (close-on-exec), or nil when nothing accepts it.
    static func connectLoopback(port: UInt16) -> Int32? {
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
    static func socketAddress(_ address: String?, port: UInt16) -> (family: Int32, storage: sockaddr_storage)? {
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
    static func tcpPortIsFree(address: String?, port: UInt16) -> Bool {
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
    enum TCPProbe: Equatable {
        /// Nothing listens.
        case refused
        /// Something accepted and closed at once (a socket-activated proxy whose backend is not up).
        case closed
        /// The connection stayed open (or the peer spoke first).
        case open
    }

    /// Connects to `address`:`port` (nil: 127.0.0.1) and watches the connection for `wait` seconds.
    static func tcpProbe(address: String?, port: UInt16, wait: Double) -> TCPProbe {
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

    /// Monotonic seconds.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Sleeps for `seconds`.
    static func sleep(_ seconds: Double) {
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&ts, &remaining) != 0 && errno == EINTR { ts = remaining }
    }
}

/// A datagram socket that receives `sd_notify` messages (`NOTIFY_SOCKET`).
final class NotifySocket {
    let path: String
    private let fd: Int32

    init(path: String) throws(RunnerError) {
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
    func receive(timeout: Double) -> [String]? {
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
