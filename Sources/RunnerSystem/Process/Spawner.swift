import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Starts processes with `posix_spawn`, without waiting for them.
package enum Spawner {
    /// Where a spawned child's standard streams go.
    package enum Stream {
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
    package static func spawn(
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
    package static func resolve(_ name: String, path: String?) -> String {
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
    package static func wait(_ pid: pid_t) -> ExitStatus {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .exited(127) }
        }
        return decode(status)
    }

    /// The status of a child that has exited, or nil while it runs.
    package static func poll(_ pid: pid_t) -> ExitStatus? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        if rc == pid { return decode(status) }
        if rc < 0 && errno == ECHILD { return .exited(127) }
        return nil
    }

    package static func decode(_ status: Int32) -> ExitStatus {
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }
}
