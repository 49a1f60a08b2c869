import CRunnerSystem
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// The one way this package starts a process: `posix_spawn`, never `fork` in Swift.
///
/// Every child gets an empty signal mask and every signal at its default disposition (what we
/// ignore, say SIGPIPE or SIGINT while we forward it, is not what a child should), the
/// environment its ``Command`` describes (ours plus its variables, or only its variables),
/// its working directory, the standard streams and the process group or session that
/// ``SpawnOptions`` name. It returns at once with a ``ChildProcess`` handle; nothing here waits.
/// The real ``CommandRunner`` (``SystemCommandRunner``) is built on it.
package enum Spawner {
    /// Starts `command`. Throws ``RunnerError/Code/commandFailed`` when the program cannot be
    /// started (not found, not executable, a working directory that does not exist), and
    /// ``RunnerError/Code/io`` when a pipe cannot be made.
    package static func spawn(_ command: Command, options: SpawnOptions = SpawnOptions()) throws(RunnerError)
        -> ChildProcess
    {
        var ends = Ends()
        defer { ends.closeAll() }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var pending: [UInt8] = []

        // Standard input.
        switch options.standardInput {
        case .inherit: break
        case .devNull: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .file(let path): posix_spawn_file_actions_addopen(&actions, 0, path, O_RDONLY, 0)
        case .descriptor(let source): posix_spawn_file_actions_adddup2(&actions, source, 0)
        case .bytes(let bytes):
            let (read, write) = try pipe(command)
            ends.inputRead = read
            ends.inputWrite = write
            pending = prefill(write, bytes)
            posix_spawn_file_actions_adddup2(&actions, read, 0)
        case .pipe, .standardOutput:
            throw misuse(command, "standard input cannot be \(options.standardInput)")
        }
        // Standard output, then standard error (which may follow it).
        for (fd, stream) in [(Int32(1), options.standardOutput), (2, options.standardError)] {
            switch stream {
            case .inherit: break
            case .devNull: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            case .descriptor(let source): posix_spawn_file_actions_adddup2(&actions, source, fd)
            case .pipe:
                let (read, write) = try pipe(command)
                _ = fcntl(read, F_SETFL, fcntl(read, F_GETFL) | O_NONBLOCK)
                if fd == 1 { (ends.output, ends.outputWrite) = (read, write) }
                if fd == 2 { (ends.errorOutput, ends.errorWrite) = (read, write) }
                posix_spawn_file_actions_adddup2(&actions, write, fd)
            case .standardOutput where fd == 2:
                posix_spawn_file_actions_adddup2(&actions, 1, 2)
            case .bytes, .standardOutput:
                throw misuse(command, "standard \(fd == 1 ? "output" : "error") cannot be \(stream)")
            }
        }
        // Nothing else of ours reaches the child: a descriptor some other code of this process
        // left without close-on-exec (or opened while we spawn) is closed in it.
        _ = withUnsafeMutablePointer(to: &actions) { runner_spawn_file_actions_addclosefrom($0, 3) }
        // Last, so that the files above are opened relative to our working directory.
        if let directory = command.workingDirectory {
            _ = withUnsafeMutablePointer(to: &actions) { runner_spawn_file_actions_addchdir($0, directory) }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        switch options.grouping {
        case .sameGroup: break
        case .newProcessGroup:
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        case .newSession:
            flags |= RUNNER_POSIX_SPAWN_SETSID
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let environment = self.environment(for: command)
        let executable = resolve(command.executable, path: environment["PATH"] ?? ProcessEnvironment.value("PATH"))
        var argv = command.argv.map { strdup($0) } + [nil]
        var envp = environment.sorted(by: { $0.key < $1.key }).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var rc = posix_spawn(&pid, executable, &actions, &attributes, &argv, &envp)
        // A program written just now (a script, a helper, a new release) can be busy for a
        // moment: a child that another thread of ours started while the file was open for
        // writing holds a copy of that descriptor until its own exec closes it. The kernel then
        // refuses to run the file (ETXTBSY). That lasts microseconds, so a few short retries
        // (about 0.25 s in all) end it; a file that stays open for writing still fails.
        for delay in Self.busyRetryDelays where rc == ETXTBSY {
            usleep(delay)
            rc = posix_spawn(&pid, executable, &actions, &attributes, &argv, &envp)
        }
        guard rc == 0 else {
            throw RunnerError(
                .commandFailed, input: command.description,
                problem: "could not start \(command.executable): \(String(cString: strerror(rc)))",
                fix: "check that \(command.executable) is installed and executable"
                    + (command.workingDirectory.map { " and that \($0) exists" } ?? ""))
        }
        if let write = ends.inputWrite, !pending.isEmpty {
            ends.inputWrite = nil
            let rest = pending
            DedicatedThread.start { writeAll(write, rest) }
        }
        let child = ChildProcess(
            pid: pid, pidfd: runner_pidfd_open(pid), output: ends.output, errorOutput: ends.errorOutput,
            grouping: options.grouping)
        ends.output = nil
        ends.errorOutput = nil
        return child
    }

    /// The pauses, in microseconds, before each new attempt to start a program the kernel
    /// found busy (open for writing somewhere).
    package static let busyRetryDelays: [UInt32] = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000]

    /// The environment `command` runs with: ours plus its variables (a nil value removes one),
    /// or only its variables when it clears the environment.
    package static func environment(for command: Command) -> [String: String] {
        var environment = command.clearsEnvironment ? [:] : ProcessEnvironment.all
        for (key, value) in command.environment {
            environment[key] = value
        }
        return environment
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

    /// A `wait` status as an ``ExitStatus``.
    package static func decode(_ status: Int32) -> ExitStatus {
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }

    // MARK: pipes

    /// Our ends and the child's, closed on the way out unless handed on.
    private struct Ends {
        var inputRead: Int32?
        var inputWrite: Int32?
        var output: Int32?
        var outputWrite: Int32?
        var errorOutput: Int32?
        var errorWrite: Int32?

        mutating func closeAll() {
            for fd in [inputRead, inputWrite, output, outputWrite, errorOutput, errorWrite] {
                if let fd { close(fd) }
            }
        }
    }

    private static func pipe(_ command: Command) throws(RunnerError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard runner_pipe_cloexec(&fds) == 0 else {
            throw RunnerError.posix("could not create a pipe for", command.executable, fix: nil)
        }
        return (fds[0], fds[1])
    }

    /// Writes what fits into the empty pipe now (so a small input never needs the child to
    /// read first) and returns the rest.
    private static func prefill(_ fd: Int32, _ bytes: [UInt8]) -> [UInt8] {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        return Array(bytes[write(fd, bytes)...])
    }

    /// Writes `bytes` to `fd` and closes it, on a thread of its own; a reader that is gone ends
    /// it (SIGPIPE is blocked on this thread, so the write fails instead of the process).
    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
        _ = write(fd, bytes)
        close(fd)
    }

    /// Writes `bytes` to `fd` until done or until a write fails or would block; returns how many
    /// were written.
    private static func write(_ fd: Int32, _ bytes: [UInt8]) -> Int {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress.map { $0 + offset }, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            offset += n
        }
        return offset
    }

    private static func misuse(_ command: Command, _ problem: String) -> RunnerError {
        RunnerError(.internal, input: command.description, problem: problem)
    }
}
