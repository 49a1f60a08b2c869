import RunnerCore
@_exported import RunnerSockets

#if canImport(Glibc)
    import Glibc
#endif

extension UnixSocket {
    /// A listening socket at `path` (replacing a stale one), mode 0600, owned by `owner`.
    package static func listen(path: String, owner: uid_t, group: gid_t) throws(RunnerError) -> Int32 {
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
}
