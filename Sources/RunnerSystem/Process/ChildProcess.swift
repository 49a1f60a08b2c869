import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// A child the supervisor must be able to signal while it runs (the GitHub runner): spawned
/// with `posix_spawn` in its own process group, default signal dispositions, and its stdout
/// and stderr on one pipe the supervisor reads and forwards.
package final class ChildProcess: Sendable {
    /// The child's pid, which is also its process group id.
    let pid: pid_t
    private let outputFD: Int32

    private init(pid: pid_t, outputFD: Int32) {
        self.pid = pid
        self.outputFD = outputFD
    }

    deinit { close(outputFD) }

    /// Starts `command` with exactly `environment` (nothing inherited). A working directory is
    /// entered through `env --chdir` (posix_spawn's chdir action is not in Glibc's Swift view).
    /// `input`: bytes on a pipe as the child's stdin (then closed; at most a pipe's capacity,
    /// 64 KiB, so writing never waits for the child), else `/dev/null`.
    package static func spawn(_ command: Command, environment: [String: String], input: [UInt8]? = nil)
        throws(RunnerError)
        -> ChildProcess
    {
        var command = command
        if let directory = command.workingDirectory {
            command = Env().changingDirectory(directory, command)
        }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw RunnerError.posix("could not create a pipe for", command.executable, fix: nil)
        }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var inputFDs: [Int32] = [-1, -1]
        if let input {
            guard input.count <= 65536, pipe(&inputFDs) == 0 else {
                close(readEnd)
                close(writeEnd)
                throw RunnerError.posix("could not create an input pipe for", command.executable, fix: nil)
            }
            _ = fcntl(inputFDs[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(inputFDs[1], F_SETFD, FD_CLOEXEC)
            let written = input.withUnsafeBytes { write(inputFDs[1], $0.baseAddress, $0.count) }
            close(inputFDs[1])
            guard written == input.count else {
                close(inputFDs[0])
                close(readEnd)
                close(writeEnd)
                throw RunnerError.posix("could not fill the input pipe of", command.executable, fix: nil)
            }
            posix_spawn_file_actions_adddup2(&actions, inputFDs[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        defer { if inputFDs[0] >= 0 { close(inputFDs[0]) } }
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = command.argv.map { strdup($0) } + [nil]
        let envp = environment.sorted(by: { $0.key < $1.key }).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc: Int32
        if command.executable.contains("/") {
            rc = posix_spawn(&pid, command.executable, &actions, &attributes, argv, envp)
        } else {
            rc = posix_spawnp(&pid, command.executable, &actions, &attributes, argv, envp)
        }
        close(writeEnd)
        guard rc == 0 else {
            close(readEnd)
            throw RunnerError(
                .commandFailed, input: command.description,
                problem: "could not start \(command.executable): \(String(cString: strerror(rc)))",
                fix: "check that \(command.executable) exists and is executable")
        }
        return ChildProcess(pid: pid, outputFD: readEnd)
    }

    /// Sends `signal` to the child's whole process group.
    package func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// Whatever output is available now (empty when none), without blocking.
    package func readAvailable() -> [UInt8] {
        var collected: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(outputFD, $0.baseAddress, $0.count) }
            if n > 0 {
                collected.append(contentsOf: buffer[0..<n])
                continue
            }
            if n < 0 && errno == EINTR { continue }
            return collected
        }
    }

    /// The exit status once the child has ended, without blocking; nil while it runs.
    package func reap() -> ExitStatus? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        guard rc == pid else { return nil }
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }
}
