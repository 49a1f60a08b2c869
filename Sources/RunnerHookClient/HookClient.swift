import CRunnerSystem
import RunnerSockets

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-hook`: what `container-hooks.sh` execs for every call of the runner's container hook.
///
/// The runner starts one hook process per call, and most calls are steps. `runner-agent` spends
/// about 4 ms on its start (relocations, the Swift runtime) before it reads a byte; this
/// client is a static executable (6.9 MB stripped, nearly all of it the Swift runtime) with no
/// dynamic section, which starts in under a millisecond. It reads the runner's JSON and:
/// - for `run_script_step` in a job whose state names its step relay, hands the call to the
///   relay as it is (`{"hook": <the runner's JSON>}`, with our stdout and stderr attached): the
///   relay decodes it with the agent's own code, runs the step and answers with its status;
/// - for anything else (`prepare_job`, `cleanup_job`, a state without a relay, a relay that is
///   not there, input it cannot read), execs `runner-agent hook` beside it with the same input
///   on stdin, so the agent decides and reports.
///
/// It never falls back once the relay has the step (the step would run twice).
public enum HookClient {
    /// Where one call goes.
    package enum Route: Equatable, Sendable {
        /// The job guest's step relay at this socket.
        case relay(socket: String)
        /// `runner-agent hook`.
        case agent
    }

    /// The relay for a `run_script_step` whose state names its relay (an absolute path); the
    /// agent for everything else, including input this client cannot parse.
    package static func route(_ payload: [UInt8]) -> Route {
        guard payload.count <= relayPayloadLimit, let input = try? JSONValue.parse(payload),
            input["command"]?.string == "run_script_step", let socket = input["state"]?["relay"]?.string,
            socket.hasPrefix("/"), UnixSocket.address(socket) != nil
        else { return .agent }
        return .relay(socket: socket)
    }

    /// The largest call the relay takes (its request limit, less the request's wrapping); a
    /// larger call goes to the agent (which reports it).
    package static let relayPayloadLimit = RelayWire.requestLimit - RelayWire.hookRequest([]).count

    /// What the relay's answer means for this process.
    package enum Outcome: Equatable, Sendable {
        /// Exit with this code (the step's, 128 + the signal that ended it).
        case exit(Int32)
        /// Report this error (one line for the job log) and exit 1.
        case error(String)
    }

    /// The outcome of the relay's answer (`{"exited":N}`, `{"signaled":N}` or `{"error":{…}}`).
    /// A missing or unreadable answer is an error, never success.
    package static func outcome(reply: [UInt8]) -> Outcome {
        let lost = Outcome.error(
            "the step relay ended without the step's exit status; check `ci-nspawn-run list`: the guest may have been stopped"
        )
        guard let answer = try? JSONValue.parse(reply) else { return lost }
        if let error = answer["error"] {
            if let text = error["text"]?.string { return .error(text) }
            return .error(
                [error["input"]?.string, error["problem"]?.string].compactMap { $0 }.joined(separator: ": "))
        }
        if let signal = answer["signaled"]?.int32 { return .exit(128 + signal) }
        if let code = answer["exited"]?.int32 { return .exit(code) }
        return lost
    }

    /// `text` as a workflow command's message: `%`, CR and LF escaped (one line).
    package static func workflowMessage(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "%": out += "%25"
            case "\r": out += "%0D"
            case "\n": out += "%0A"
            case "\r\n": out += "%0D%0A"
            default: out.append(character)
            }
        }
        return out
    }

    /// The agent this client hands calls to: `runner-agent` in this executable's directory.
    package static func agentPath(executable: String) -> String {
        guard let slash = executable.lastIndex(of: "/") else { return "runner-agent" }
        return String(executable[...slash]) + "runner-agent"
    }

    // MARK: the process

    /// Handles the call on stdin and exits (or execs the agent).
    public static func main() -> Never {
        let payload = readAll(0)
        switch route(payload) {
        case .agent:
            execAgent(payload)
        case .relay(let socket):
            guard let connection = UnixSocket.connect(path: socket) else { execAgent(payload) }
            finish(runThroughRelay(connection, request: RelayWire.hookRequest(payload)))
        }
    }

    static func finish(_ outcome: Outcome) -> Never {
        switch outcome {
        case .exit(let code):
            exit(code)
        case .error(let text):
            writeAll(1, Array("::error::\(workflowMessage(text))\n".utf8))
            writeAll(2, Array("runner-hook: error: \(text)\n".utf8))
            exit(1)
        }
    }

    /// Sends the request with our stdout and stderr, passes SIGINT/SIGTERM on as stop requests
    /// (the first one's number, then 0xff: kill), and reads the answer until the relay closes.
    static func runThroughRelay(_ connection: Int32, request: [UInt8]) -> Outcome {
        // Blocked before the request goes out, so no stop request is lost once the step runs.
        let signals = runner_stop_signalfd()
        guard UnixSocket.send(connection, message: request, descriptors: [1, 2]) else {
            return .error("the step relay did not take the step; the job's guest is gone: re-run the job")
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var stops = 0
        var descriptors = [pollfd(fd: connection, events: Int16(POLLIN), revents: 0)]
        if signals >= 0 { descriptors.append(pollfd(fd: signals, events: Int16(POLLIN), revents: 0)) }
        while answer.count < 65536 {
            let ready = poll(&descriptors, nfds_t(descriptors.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if descriptors.count > 1, descriptors[1].revents & Int16(POLLIN) != 0 {
                var info = [UInt8](repeating: 0, count: 128)
                let n = info.withUnsafeMutableBytes { read(signals, $0.baseAddress, $0.count) }
                if n == 128 {
                    let number = UInt32(info[0]) | UInt32(info[1]) << 8 | UInt32(info[2]) << 16 | UInt32(info[3]) << 24
                    var byte: UInt8 = stops == 0 ? UInt8(truncatingIfNeeded: number) : 0xff
                    stops += 1
                    _ = Glibc.send(connection, &byte, 1, Int32(MSG_NOSIGNAL))
                }
            }
            if descriptors[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                answer += buffer[0..<n]
            }
        }
        return outcome(reply: answer)
    }

    /// Execs `runner-agent hook` with `payload` as its stdin (an in-memory file: no pipe to
    /// fill, nothing on disk).
    static func execAgent(_ payload: [UInt8]) -> Never {
        let agent = agentPath(executable: selfExecutable())
        let input = runner_memfd("runner-hook-input")
        guard input >= 0 else {
            finish(
                .error(
                    "could not hand the call to \(agent): memfd_create: \(String(cString: strerror(errno))); "
                        + "the host may be out of memory or file descriptors"))
        }
        writeAll(input, payload)
        lseek(input, 0, SEEK_SET)
        if input != 0 {
            dup2(input, 0)
            close(input)
        }
        let arguments = ["runner-agent", "hook"]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        execv(agent, &argv)
        finish(
            .error(
                "could not run \(agent): \(String(cString: strerror(errno))); runner-hook needs runner-agent beside it "
                    + "(reinstall the release: runner-agent install)"))
    }

    static func selfExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return CommandLine.arguments.first ?? "runner-hook" }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func readAll(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return bytes
    }

    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
