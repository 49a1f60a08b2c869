import Dispatch
import FoundationEssentials
import Logging
import RunnerCore
import RunnerSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The step relay: a small root process per guest that runs the unprivileged hook's steps.
///
/// It runs every step as a transient unit of the guest's systemd over one connection to its
/// private socket (see ``GuestBus``; no guest binary runs on the host, and a bus that cannot be
/// reached fails the step clearly).
///
/// `ci-nspawn-run start`, called through sudo, starts it next to the guest with a socket at
/// `/run/runner/relay/<guest>.sock` that only the calling user (`SUDO_UID`) may connect to. A
/// step then costs the hook one connection instead of `sudo` plus a second helper process: the
/// hook sends the command, its environment and working directory, and passes its own stdout and
/// stderr (`SCM_RIGHTS`; see ``StepOutput``), so the step's output streams to the runner. The
/// relay checks the request exactly as `ci-nspawn-run exec` does (same code), runs the step,
/// hands the workspace back to the work owner, and answers with the exit status. A byte from
/// the hook (the signal it received) stops the step; a closed connection stops it too. The
/// relay exits when its guest is gone, and `stop`/`gc` end it with the guest.
public struct GuestRelay: Sendable {
    public var manager: GuestManager
    public var name: String
    /// The one user (besides root) allowed to connect.
    public var allowedUID: uid_t
    /// Reads a request that carries the runner's own JSON (what `runner-hook` sends for a
    /// `run_script_step`: `RelayWire.hookRequest`) and returns the step it asks for in guest
    /// `name`. Without one, such requests are refused.
    public var hookSteps: HookStepDecoder?

    /// The step a hook call asks for, from the runner's JSON (`RelayWire.hookJSON`), checked to
    /// be for guest `name`.
    public typealias HookStepDecoder = @Sendable (_ json: [UInt8], _ name: String) throws(RunnerError) -> Request

    public init(manager: GuestManager, name: String, allowedUID: uid_t, hookSteps: HookStepDecoder? = nil) {
        self.manager = manager
        // Every step reads the guest's record: decoded again only when the file changed.
        self.manager.recordCache = GuestRecordCache()
        self.name = name
        self.allowedUID = allowedUID
        self.hookSteps = hookSteps
    }

    /// What the hook asks for: a command, its environment and working directory in the guest.
    public struct Request: Codable, Sendable, Equatable {
        public var command: [String]
        public var environment: [String: String]
        public var workingDirectory: String?

        public init(command: [String], environment: [String: String], workingDirectory: String?) {
            self.command = command
            self.environment = environment
            self.workingDirectory = workingDirectory
        }
    }

    /// What the relay answers: the step's status, or why it did not run.
    struct Reply: Codable {
        var exited: Int32?
        var signaled: Int32?
        var error: ErrorText?

        struct ErrorText: Codable {
            var code: String
            var input: String
            var problem: String
            var fix: String?
            /// The whole message as the agent prints it (what `runner-hook` shows).
            var text: String?
        }
    }

    // MARK: starting (``RelayProcess`` starts the process)

    /// Closes what the relay inherited beyond its standard streams (descriptors its starter
    /// left without close-on-exec): a long-lived root process keeps nothing it was not given.
    /// Our own descriptors (libdispatch's, the runtime's) are all close-on-exec and stay.
    package static func closeInheritedDescriptors() {
        for entry in FilePaths.entries(of: "/proc/self/fd") {
            guard let fd = Int32(entry), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0, flags & FD_CLOEXEC == 0 { close(fd) }
        }
    }

    // MARK: serving

    /// Serves connections on `listener` until the guest is gone.
    public func serve(listener: Int32) {
        signal(SIGPIPE, SIG_IGN)
        var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        // One connection to the guest's systemd for all its steps, made at the first step.
        var bus: SystemdBus?
        while true {
            let ready = poll(&pfd, 1, 1000)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 {
                if !guestIsThere() { break }
                continue
            }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            handle(connection, bus: &bus)
            close(connection)
        }
        unlink(manager.layout.guestRelaySocket(name))
    }

    /// Whether the relay goes on serving: its guest runs, or is still starting with a live
    /// starter (the relay starts while its guest boots; a start that fails ends it).
    func guestIsThere() -> Bool {
        guard let record = try? manager.record(name) else { return false }
        if record.status == .starting {
            return ProcessTable.isAlive(record.starterPID, startTime: record.starterStartTime)
        }
        return (try? manager.running(name)) != nil
    }

    func handle(_ connection: Int32, bus: inout SystemdBus?) {
        let reply: Reply
        do throws(RunnerError) {
            let status = try runStep(connection, bus: &bus)
            switch status {
            case .exited(let code): reply = Reply(exited: code)
            case .signaled(let signal): reply = Reply(signaled: signal)
            }
        } catch {
            reply = Reply(
                error: .init(
                    code: error.code.rawValue, input: error.input, problem: error.problem, fix: error.fix,
                    text: "\(error)"))
        }
        if let data = try? JSONEncoder().encode(reply) {
            _ = UnixSocket.writeAll(connection, Array(data))
        }
    }

    func runStep(_ connection: Int32, bus: inout SystemdBus?) throws(RunnerError) -> ExitStatus {
        guard let uid = UnixSocket.peerUID(connection), uid == 0 || uid == allowedUID else {
            throw RunnerError(
                .permission, input: manager.layout.guestRelaySocket(name),
                problem: "only the user who started the guest may run steps in it")
        }
        guard
            let (message, descriptors) = UnixSocket.receive(
                connection, limit: RelayWire.requestLimit, maxDescriptors: 2)
        else {
            throw RunnerError(.invalidInput, input: "step request", problem: "is truncated or too large")
        }
        defer { descriptors.forEach { close($0) } }
        guard descriptors.count == 2 else {
            throw RunnerError(.invalidInput, input: "step request", problem: "came without stdout and stderr")
        }
        let request = try decodeRequest(message)
        let step = try manager.prepareStep(
            name, command: request.command, environment: request.environment,
            workingDirectory: request.workingDirectory)
        // The caller's descriptors reach the guest only when they are pipes or sockets.
        let stdout = try StepOutput.prepare(descriptors[0])
        let stderr = try StepOutput.prepare(descriptors[1])
        defer {
            stdout.finish()
            stderr.finish()
        }
        // The hook's stop requests (the signal number), or its end (EOF), arrive on the
        // connection while the step runs. The step runs over the guest's systemd only: when it
        // cannot be reached, the step fails (nothing from the guest runs on the host).
        let status = try GuestManager.runStep(
            step, bus: &bus, stdout: stdout.descriptor, stderr: stderr.descriptor, stopRequests: connection)
        manager.finishStep(step.record)
        return status
    }

    /// The step `message` asks for: a plain ``Request``, or the runner's JSON (``hookSteps``).
    package func decodeRequest(_ message: [UInt8]) throws(RunnerError) -> Request {
        if message.starts(with: RelayWire.hookRequestPrefix) {
            guard let hookSteps, let json = RelayWire.hookJSON(message) else {
                throw RunnerError(
                    .invalidInput, input: "step request", problem: "carries a hook call this relay does not take",
                    fix: "the relay is older than runner-hook; re-run the job")
            }
            return try hookSteps(json, name)
        }
        do {
            return try JSONDecoder().decode(Request.self, from: Data(message))
        } catch {
            throw RunnerError(.invalidInput, input: "step request", problem: "is not a step request", underlying: error)
        }
    }

    // MARK: the hook's side

    /// Runs a step through the relay of guest `name` with our stdout and stderr; nil when
    /// the guest has no relay (the caller then goes through sudo). The wait for the step's
    /// status runs on a thread of its own.
    package static func exec(
        layout: HostLayout, name: String, command: [String], environment: [String: String],
        workingDirectory: String?
    ) async throws(RunnerError) -> ExitStatus? {
        try await DedicatedThread.run { () throws(RunnerError) -> ExitStatus? in
            try execBlocking(
                layout: layout, name: name, command: command, environment: environment,
                workingDirectory: workingDirectory)
        }
    }

    /// ``exec(layout:name:command:environment:workingDirectory:)`` on this thread.
    static func execBlocking(
        layout: HostLayout, name: String, command: [String], environment: [String: String],
        workingDirectory: String?
    ) throws(RunnerError) -> ExitStatus? {
        try GuestName.check(name)
        guard let connection = UnixSocket.connect(path: layout.guestRelaySocket(name)) else { return nil }
        defer { close(connection) }
        let request = Request(command: command, environment: environment, workingDirectory: workingDirectory)
        let data: Data
        do { data = try JSONEncoder().encode(request) } catch {
            throw RunnerError(.internal, input: name, problem: "could not encode the step request", underlying: error)
        }
        guard UnixSocket.send(connection, message: Array(data), descriptors: [1, 2]) else {
            throw RunnerError(
                .commandFailed, input: layout.guestRelaySocket(name), problem: "the step relay did not take the step",
                fix: "the job's guest is gone; re-run the job")
        }
        // The first SIGINT/SIGTERM asks the relay to stop the step; a second one kills it.
        let forwarder = StopSignals.forward(to: connection)
        defer { forwarder.cancel() }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while answer.count < 65536 {
            let n = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        // A lost status is never success (actions/runner-container-hooks#396).
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(answer)) else {
            throw RunnerError(
                .commandFailed, input: name, problem: "the step relay ended without the step's exit status",
                fix: "check `ci-nspawn-run list`; the guest may have been stopped")
        }
        if let error = reply.error {
            throw RunnerError(.init(error.code), input: error.input, problem: error.problem, fix: error.fix)
        }
        if let signal = reply.signaled { return .signaled(signal) }
        return .exited(reply.exited ?? 1)
    }
}
