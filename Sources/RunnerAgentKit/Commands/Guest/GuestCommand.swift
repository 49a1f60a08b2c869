import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent guest …`, installed as `/usr/local/bin/ci-nspawn-run`: the one privileged helper.
public struct GuestCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Boot, enter, stop and sweep ephemeral systemd-nspawn guests (installed as ci-nspawn-run).",
        discussion: """
            Only images from the local store, mount sources under the runner's work and externals \
            directories (or RUNNER_GUEST_MOUNT_ALLOW), and guest names this helper generated are accepted.
            """,
        subcommands: [
            GuestStartCommand.self, GuestExecCommand.self, GuestStopCommand.self, GuestListCommand.self,
            GuestGCCommand.self, GuestSettingsCommand.self,
        ]
    )

    public init() {}

    /// Runs the tree as `ci-nspawn-run` (argv[0] dispatch): `arguments` excludes the program name.
    public static func mainAsHelper(_ arguments: [String]) async {
        do {
            var command = try parseAsRoot(arguments)
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

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
            do {
                request = try JSONDecoder().decode(GuestStartRequest.self, from: Data(readStandardInput()))
            } catch {
                throw RunnerError(.invalidInput, input: "stdin", problem: "is not a start request", underlying: error)
            }
        } else {
            request = GuestStartRequest(image: image ?? "", hostAliases: hostAlias, ownerPID: ownerPid)
            request.binds = try bind.map(Self.parseBind)
        }
        let info = try await manager.start(request)
        if let (uid, gid) = relayOwner {
            do {
                try await GuestRelay(manager: manager, name: info.name, allowedUID: uid).launch(uid: uid, gid: gid)
            } catch {
                try? await manager.stop(info.name)
                throw error
            }
        }
        let json = try JSONEncoder().encode(info)
        StandardOutput.write(String(decoding: json, as: UTF8.self) + "\n")
    }

    /// Who the step relay serves: the sudo caller, or `--relay-uid` from a root caller.
    var relayOwner: (uid_t, gid_t)? {
        if AgentHost.calledThroughSudo {
            guard let uid = ProcessEnvironment.value("SUDO_UID").flatMap(UInt32.init),
                let gid = ProcessEnvironment.value("SUDO_GID").flatMap(UInt32.init), uid != 0
            else { return nil }
            return (uid, gid)
        }
        guard let uid = relayUid else { return nil }
        return (uid, getpwuid(uid)?.pointee.pw_gid ?? uid)
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

struct GuestExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command in a guest as a transient unit; output streams, exit status passes through.")

    @Argument(help: "The guest name (from `start`).")
    var name: String

    @Option(help: "The working directory in the guest.")
    var cwd: String?

    @Option(help: ArgumentHelp("A variable NAME=VALUE for the command (not for secrets). Repeatable."))
    var env: [String] = []

    @Flag(help: "Read the environment as a JSON object from stdin (keeps values off command lines).")
    var envStdin = false

    @Option(help: "Stop the command after this many seconds (the unit's RuntimeMaxSec=).")
    var timeout: Double?

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command after --") }
        if let timeout, !(timeout > 0 && timeout <= 86400) {
            throw ValidationError("--timeout \(timeout): give seconds, more than 0 and at most 86400")
        }
        for assignment in env where !assignment.contains("=") {
            throw ValidationError("--env \(assignment): expected NAME=VALUE")
        }
    }

    func run() async throws {
        let manager = try AgentHost.manager()
        var environment: [String: String] = [:]
        if envStdin {
            do {
                environment = try JSONDecoder().decode([String: String].self, from: Data(readStandardInput()))
            } catch {
                throw RunnerError(.invalidInput, input: "stdin", problem: "is not a JSON object of strings")
            }
        }
        for assignment in env {
            let eq = assignment.firstIndex(of: "=")!
            environment[String(assignment[..<eq])] = String(assignment[assignment.index(after: eq)...])
        }
        let status = try await manager.exec(
            name, command: command, environment: environment, workingDirectory: cwd, timeout: timeout)
        if !status.isSuccess { throw ExitCode(status.shellCode) }
    }
}

struct GuestStopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop guests and remove what they left; a guest already gone is fine.")

    @Argument(help: "Guest names.")
    var names: [String] = []

    func run() async throws {
        let manager = try AgentHost.manager()
        for name in names { try await manager.stop(name) }
    }
}

struct GuestListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List guests.")

    @Flag(help: "Print JSON records.")
    var json = false

    func run() async throws {
        let manager = try AgentHost.manager()
        for record in manager.list() {
            if json {
                StandardOutput.write(String(decoding: try JSONEncoder().encode(record), as: UTF8.self) + "\n")
            } else {
                let stale = manager.isStale(record) ? " (stale)" : ""
                StandardOutput.write("\(record.name)\t\(record.image)\t\(record.status.rawValue)\(stale)\n")
            }
        }
    }
}

struct GuestGCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Stop and remove guests whose job is gone (with --all: every guest).")

    @Flag(help: "Remove every guest, not just stale ones.")
    var all = false

    @Option(help: "Also remove every guest of the job whose owner is this PID.")
    var ownerPid: Int32?

    func run() async throws {
        let manager = try AgentHost.manager()
        for name in await manager.gc(all: all, owner: ownerPid) {
            StandardOutput.write("removed \(name)\n")
        }
    }
}

struct GuestSettingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "Print the hook's settings from config.env as JSON (image aliases, mount roots; no secrets).",
        discussion: """
            The hook runs as the runner user and cannot read config.env (0600 root: it holds the \
            runner's credentials), so it asks the helper for the few keys it needs.
            """)

    func run() async throws {
        let manager = try AgentHost.manager()
        let json = try JSONEncoder().encode(manager.settings)
        StandardOutput.write(String(decoding: json, as: UTF8.self) + "\n")
    }
}

/// `runner-agent relay NAME --uid UID`: one guest's step relay, started by `start` (see
/// ``GuestRelay``). Not part of the `ci-nspawn-run` tree (the sudoers rule cannot name it), and
/// it refuses a caller that came through sudo.
public struct RelayCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Serve one guest's steps on the listening socket given as stdin (started by `guest start`).",
        shouldDisplay: false)

    @Argument(help: "The guest name.")
    var name: String

    @Option(help: "The user allowed to connect.")
    var uid: UInt32

    public init() {}

    /// The variables sudo sets for the command it runs.
    static let sudoVariables = ["SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND"]

    /// Refuses a caller that came through sudo (the relay is root's, started by `start` with a
    /// fresh environment).
    static func checkCaller(environment: (String) -> String? = ProcessEnvironment.value) throws(RunnerError) {
        if let variable = sudoVariables.first(where: { environment($0) != nil }) {
            throw RunnerError(
                .permission, input: "relay",
                problem: "is internal to the runner and cannot be run through sudo (\(variable) is set)",
                fix: "`ci-nspawn-run start` starts a guest's relay; run steps with the hook")
        }
    }

    public func run() throws {
        try Self.checkCaller()
        guard geteuid() == 0 else {
            throw RunnerError(
                .permission, input: "relay", problem: "runs only as root", fix: "it is started by `start`")
        }
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening == 1 else {
            throw RunnerError(
                .invalidInput, input: "stdin", problem: "is not a listening socket",
                fix: "the relay is started by `ci-nspawn-run start`; do not run it by hand")
        }
        GuestRelay.closeInheritedDescriptors()
        let manager = try AgentHost.manager()
        _ = try manager.running(name)
        GuestRelay(manager: manager, name: name, allowedUID: uid).serve(listener: 0)
    }
}

/// Reads stdin to EOF.
func readStandardInput() -> [UInt8] {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
    }
    return bytes
}
