import CRunnerSystem
import RunnerCore
import RunnerImages
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A step in a guest that has no init of ours to ask (an image without systemd, run under
/// nspawn's stub init): the relay starts the guest's program in the guest's namespaces itself
/// (`runner_guest_spawn`, `CRunnerSystem`), as the image's user, with the step's environment and
/// working directory, and waits for it.
///
/// Everything after joining the namespaces happens inside the guest: the working directory and
/// the program are resolved in the guest's root as the guest user, so no path the guest controls
/// is ever followed on the host, and the program runs in the guest's user namespace, never with
/// the host's privileges. The step leads a process group of its own, keeps docker's default
/// capability bounding set (plus what the admin let the job add), and whatever it leaves in its
/// group is killed when it ends (as today's step units are stopped).
struct EnteredStep: Sendable, Hashable {
    var argv: [String]
    /// `NAME=VALUE` entries, exactly the step's environment.
    var environment: [String]
    var workingDirectory: String?
    var user: ImageUser
    /// The capability bounding set kept (bit n = capability n).
    var capabilities: UInt64
    /// Seconds until the step is stopped (health checks); nil: none.
    var timeout: Double?

    /// How long a stopped step has before it is killed (as a unit's `TimeoutStopSec=5`).
    static let stopGrace = 5.0

    /// Starts the step in the guest whose PID 1 is `leader` and waits for it. A byte on
    /// `stopRequests` (the signal the hook received) sends that signal to the step's process
    /// group; ``StopSignals/killByte``, a second request, or the end of `stopRequests` (the hook
    /// is gone) kill it; a step still running ``stopGrace`` seconds after a stop is killed.
    func run(leader: Int32, guest: String, stdin: Int32, stdout: Int32, stderr: Int32, stopRequests: Int32?)
        throws(RunnerError) -> ExitStatus
    {
        let pid = try spawn(leader: leader, guest: guest, stdin: stdin, stdout: stdout, stderr: stderr)
        // Our child (reaped below): its PID cannot be recycled before that, so the descriptor
        // names it.
        let stepFD = runner_pidfd_open(pid)
        guard stepFD >= 0 else {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            _ = ChildProcess.reap(pid)
            throw RunnerError.posix("could not watch the step", guest, fix: nil)
        }
        defer { close(stepFD) }
        var requested: Int32 = 0
        var killed = false
        var watching = stopRequests
        var killAt: Double? = timeout.map { MonotonicClock.now() + $0 }
        var timedOut = false
        while true {
            if Self.hasEnded(stepFD) {
                // What the step left in its group goes, while its zombie still holds the group's
                // number (no other group can have taken it); then the step is reaped.
                kill(-pid, SIGKILL)
                let status = ChildProcess.reap(pid) ?? .exited(127)
                if requested != 0 { return .signaled(requested) }
                if timedOut { return .signaled(SIGKILL) }
                return status
            }
            if let deadline = killAt, MonotonicClock.now() >= deadline {
                if !killed, timeout != nil, requested == 0, !timedOut {
                    // The time ran out: stop it as a unit's RuntimeMaxSec= would, then kill.
                    timedOut = true
                    kill(-pid, SIGTERM)
                    killAt = MonotonicClock.now() + Self.stopGrace
                } else {
                    kill(-pid, SIGKILL)
                    killed = true
                    killAt = nil
                }
            }
            var fds = [pollfd(fd: stepFD, events: Int16(POLLIN), revents: 0)]
            if let fd = watching { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let wait = killAt.map { max(0, min(1, $0 - MonotonicClock.now())) } ?? 1
            let ready = poll(&fds, nfds_t(fds.count), Int32(wait * 1000) + 1)
            if ready < 0, errno != EINTR { throw RunnerError.posix("poll", guest, fix: nil) }
            guard ready > 0, fds.count > 1, fds[1].revents != 0, let fd = watching else { continue }
            var byte: UInt8 = 0
            let n = read(fd, &byte, 1)
            if n < 0, errno == EINTR || errno == EAGAIN { continue }
            if n <= 0 { watching = nil }
            if requested == 0 && (n <= 0 || byte != StopSignals.killByte) {
                requested = n == 1 ? Int32(byte) : SIGTERM
                kill(-pid, requested)
                killAt = MonotonicClock.now() + Self.stopGrace
            } else if n == 1 {
                if requested == 0 { requested = SIGKILL }
                kill(-pid, SIGKILL)
                killed = true
            }
        }
    }

    /// Whether the process behind `pidfd` has ended (it stays a zombie until reaped).
    static func hasEnded(_ pidfd: Int32) -> Bool {
        var fds = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
        return poll(&fds, 1, 0) > 0 && fds[0].revents != 0
    }

    /// Starts the step's process (our child); its PID.
    func spawn(leader: Int32, guest: String, stdin: Int32, stdout: Int32, stderr: Int32) throws(RunnerError) -> Int32 {
        guard leader > 1 else {
            throw RunnerError(
                .invalidInput, input: guest, problem: "has no init process recorded",
                fix: "the guest did not finish starting; re-run the job")
        }
        guard let program = argv.first, !program.isEmpty, !argv.contains(where: { $0.contains("\0") }),
            !environment.contains(where: { $0.contains("\0") })
        else {
            throw RunnerError(.invalidInput, input: guest, problem: "the step's command or environment is not valid")
        }
        let leaderFD = runner_pidfd_open(leader)
        guard leaderFD >= 0 else {
            throw RunnerError.posix("the guest's init is gone", guest, fix: "re-run the job")
        }
        defer { close(leaderFD) }
        let search = environment.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? GuestDefaults.path
        var step: Int32 = 0
        var code: Int32 = 0
        let pid = CStrings.withArray(argv) { argvPointer in
            CStrings.withArray(environment) { envPointer in
                user.groups.withUnsafeBufferPointer { groups in
                    (workingDirectory ?? "/").withCString { cwd in
                        search.withCString { path in
                            var request = runner_guest_spawn_request()
                            request.leader_pidfd = leaderFD
                            request.uid = user.uid
                            request.gid = user.gid
                            request.groups = groups.baseAddress
                            request.group_count = Int32(groups.count)
                            request.capabilities = capabilities
                            request.cwd = cwd
                            request.argv = argvPointer
                            request.envp = envPointer
                            request.search_path = path
                            request.stdin_fd = stdin
                            request.stdout_fd = stdout
                            request.stderr_fd = stderr
                            return runner_guest_spawn(&request, &step, &code)
                        }
                    }
                }
            }
        }
        guard pid > 0 else { throw Self.failure(step: step, code: code, guest: guest, step: self) }
        return pid
    }

    /// The error for a failed start: what the guest lacks is the job's to fix, anything else the
    /// guest's state.
    static func failure(step: Int32, code: Int32, guest: String, step entered: EnteredStep) -> RunnerError {
        let reason = String(cString: strerror(code))
        switch UInt32(bitPattern: step) {
        case RUNNER_SPAWN_EXEC.rawValue:
            return RunnerError(
                .commandFailed, input: "\(guest) \(entered.argv.first ?? "")",
                problem: "could not run the program in the guest (\(reason))",
                fix: "check that the image has it (as the image's user, on PATH \(entered.searchPathDescription))")
        case RUNNER_SPAWN_CHDIR.rawValue:
            return RunnerError(
                .commandFailed, input: "\(guest) \(entered.workingDirectory ?? "/")",
                problem: "the working directory is not usable in the guest (\(reason))",
                fix: "create it in the image or the job, or choose another working directory")
        case RUNNER_SPAWN_SETNS.rawValue:
            return RunnerError(
                .commandFailed, input: guest, problem: "could not enter the guest's namespaces (\(reason))",
                fix: "the guest is gone or broken; check `ci-nspawn-run list` and re-run the job")
        case RUNNER_SPAWN_CREDENTIALS.rawValue:
            return RunnerError(
                .commandFailed, input: "\(guest) uid \(entered.user.uid) gid \(entered.user.gid)",
                problem: "could not take the image user's ids in the guest (\(reason))",
                fix: "use a USER inside the guest's ids (0-\(ImageUser.maximumID))")
        default:
            return RunnerError(
                .commandFailed, input: guest,
                problem: "could not start the step in the guest (step \(step): \(reason))",
                fix: "check the guest (`ci-nspawn-run list`); re-run the job")
        }
    }

    var searchPathDescription: String {
        environment.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? GuestDefaults.path
    }
}

/// NUL-terminated C string arrays for a call, freed after it.
enum CStrings {
    static func withArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        var pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
        pointers.append(nil)
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
