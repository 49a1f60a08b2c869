import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent guest start`: boots a guest from a local image (what the hook's prepare_job asks for).
struct GuestStartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Boot a guest from a local image; print its name and leader as JSON.")

    @Option(help: "A local image name (see `runner-agent images list`).")
    var image: String?

    @Option(help: ArgumentHelp("A bind: SOURCE:TARGET[:ro]. Repeatable.", valueName: "bind"))
    var bind: [String] = []

    @Option(help: "A name that resolves to 127.0.0.1 in the guest. Repeatable.")
    var hostAlias: [String] = []

    @Option(
        help: """
            The job owner's PID: when it exits, `gc` removes the guest. Through sudo: a process of             the caller that called this helper (default: the nearest); as root: the parent by default.
            """)
    var ownerPid: Int32?

    @Flag(help: "Read the whole request as JSON from stdin (what the hook sends).")
    var requestStdin = false

    @Option(
        help: ArgumentHelp(
            "Start a step relay that this user may run steps through (through sudo: always the calling user).",
            valueName: "uid"))
    var relayUid: UInt32?

    func validate() throws {
        if !requestStdin && image == nil {
            throw ValidationError("give --image NAME (or --request-stdin)")
        }
    }

    func run() async throws {
        let manager = try AgentHost.manager()
        var request: GuestStartRequest
        if requestStdin {
            let input = await StandardInput.read()
            do {
                request = try JSONDecoder().decode(GuestStartRequest.self, from: Data(input))
            } catch {
                throw RunnerError(.invalidInput, input: "stdin", problem: "is not a start request", underlying: error)
            }
        } else {
            request = GuestStartRequest(image: image ?? "", hostAliases: hostAlias, ownerPID: ownerPid)
            request.binds = try bind.map(Self.parseBind)
        }
        let info = try await manager.start(request, caller: .current, relay: relay)
        let json = try JSONEncoder().encode(info)
        StandardOutput.write(String(decoding: json, as: UTF8.self) + "\n")
    }

    /// Who the step relay serves: the sudo caller, or `--relay-uid` from a root caller.
    var relay: RelayProcess? {
        if AgentHost.calledThroughSudo {
            guard let uid = ProcessEnvironment.value("SUDO_UID").flatMap(UInt32.init),
                let gid = ProcessEnvironment.value("SUDO_GID").flatMap(UInt32.init), uid != 0
            else { return nil }
            return RelayProcess(uid: uid, gid: gid)
        }
        guard let uid = relayUid else { return nil }
        return RelayProcess(uid: uid, gid: getpwuid(uid)?.pointee.pw_gid ?? uid)
    }

    static func parseBind(_ text: String) throws -> GuestBind {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var readOnly = false
        if parts.count == 3, parts[2] == "ro" || parts[2] == "rw" {
            readOnly = parts[2] == "ro"
            parts.removeLast()
        }
        guard parts.count == 2 else {
            throw ValidationError("--bind \(text): expected SOURCE:TARGET[:ro]")
        }
        return GuestBind(source: parts[0].isEmpty ? nil : parts[0], target: parts[1], readOnly: readOnly)
    }
}
