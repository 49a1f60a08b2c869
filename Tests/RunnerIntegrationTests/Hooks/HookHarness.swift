import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

extension Trait where Self == ConditionTrait {
    /// Skips unless real guests can be booted (``HookHarness/isAvailable``) and `setpriv` can run
    /// the hook as an unprivileged user.
    static var guestsAndSetpriv: Self {
        .enabled(
            if: HookHarness.isAvailable && TestHost.which("setpriv") != nil,
            "needs root, systemd-nspawn, mmdebstrap, setpriv and the built runner-agent and runner-hook")
    }
}

/// A runner work tree, image store and config in a temp root, and the built `runner-agent`
/// run the way the runner runs the hook: JSON on stdin, a response file, an exit code.
final class HookHarness: Sendable {
    /// Runs `body` with a fresh harness and always finishes it (guests stopped, files removed).
    static func with(_ body: (HookHarness) async throws -> Void) async throws {
        let h = try await HookHarness()
        do {
            try await body(h)
        } catch {
            await h.finish()
            throw error
        }
        await h.finish()
    }

    let dir: TemporaryDirectory
    let layout: HostLayout
    let servicePort: UInt16
    /// The job's stand-in: the process guests belong to.
    let ownerProcess: ChildProcess
    var owner: pid_t { ownerProcess.pid }
    static let ownerUID: UInt32 = 4242

    /// The built `runner-agent` beside the test binary, or nil.
    static var agent: String? { BuiltProducts.runnerAgent }
    /// The built `runner-hook` beside it, or nil.
    static var hookClient: String? { BuiltProducts.runnerHook }

    static var isAvailable: Bool {
        TestHost.isRoot && TestHost.which("systemd-nspawn") != nil && TestHost.which("mmdebstrap") != nil
            && agent != nil && hookClient != nil
    }

    var work: String { layout.workDirectory }
    var externals: String { layout.runnerExternalsDirectory }

    init() async throws {
        dir = try TemporaryDirectory("hook")
        layout = dir.layout
        let servicePort = UInt16.random(in: 20000...29999)
        self.servicePort = servicePort
        let layout = self.layout
        let work = layout.workDirectory
        let base = try await CachedTree.guest.shiftedTree(.standard)
        try Self.installImage(base, name: "job", layout: layout)
        try Self.installImage(base, name: "svc", layout: layout) { rootfs in
            try Self.addTestHTTPService(rootfs: rootfs, port: servicePort)
        }
        for sub in [
            "_temp/_runner_file_commands", "_temp/_github_home", "_temp/_github_workflow", "_tool",
            "octo-repo/octo-repo",
        ] {
            try FilePaths.createDirectory(work + "/" + sub)
        }
        try FilePaths.createDirectory(layout.runnerExternalsDirectory + "/node20/bin")
        try AtomicFile.write(
            "RUNNER_IMAGE_ALIASES=ghcr.io/octo-org/ci-image:1.4=job\n", to: layout.configFile)
        // As on a host: the runner user owns its work tree and externals (the guest's binds are
        // idmapped to these owners).
        for path in [work, layout.runnerExternalsDirectory] {
            let chown = Command("chown", ["-R", "\(Self.ownerUID):\(Self.ownerUID)", path])
            #expect(try await Spawner.spawn(chown).wait() == .exited(0))
        }
        ownerProcess = try Spawner.spawn(
            Command("sleep", ["3600"]), options: SpawnOptions(standardOutput: .devNull, standardError: .devNull))
    }

    /// Adds `test-http.service` (enabled) to `rootfs`: python3's HTTP server on 127.0.0.1:`port`
    /// serving `/srv`, the test service image. Files are replaced, never written through a link.
    static func addTestHTTPService(rootfs: String, port: UInt16) throws {
        let unit = """
            [Unit]
            Description=test service
            [Service]
            ExecStart=/usr/bin/python3 -m http.server \(port) --bind 0.0.0.0 --directory /srv
            [Install]
            WantedBy=multi-user.target

            """
        try AtomicFile.write(unit, to: rootfs + "/etc/systemd/system/test-http.service")
        try FilePaths.createDirectory(rootfs + "/etc/systemd/system/multi-user.target.wants")
        symlink(
            "/etc/systemd/system/test-http.service",
            rootfs + "/etc/systemd/system/multi-user.target.wants/test-http.service")
        try FilePaths.createDirectory(rootfs + "/srv")
    }

    /// Lays `base` (a tree shifted to `userNamespace`, see ``CachedTree/shiftedTree(_:)``) into
    /// the store as `<name>/<digest>/rootfs` (hard links) with `current` and the version's
    /// marker. Files `customize` adds are shifted too; the hard-linked ones already are, so the
    /// shift never writes through a link into the cache.
    static func installImage(
        _ base: String, name: String, layout: HostLayout, userNamespace: GuestUserNamespace? = .standard,
        customize: (String) throws -> Void = { _ in }
    ) throws {
        let digest = String(repeating: "0", count: 60) + "7e57"
        let version = layout.imageDirectory(name) + "/" + digest
        try FilePaths.createDirectory(version)
        let copy = Command("cp", ["-al", base, version + "/rootfs"])
        #expect(try Spawner.spawn(copy).waitBlocking() == .exited(0))
        // Files we change are replaced, never written through a shared hard link.
        try customize(version + "/rootfs")
        if let userNamespace {
            try ImageOwnership.shift(
                root: version + "/rootfs", from: GuestUserNamespace(base: 0, size: userNamespace.size),
                to: userNamespace)
            try AtomicFile.write(
                userNamespace.description + "\n", to: version + "/" + ImageOwnership.markerName, mode: 0o644)
        }
        symlink(digest, layout.currentImage(name))
    }

    /// Ends the owner, sweeps whatever is left and removes the tree.
    func finish() async {
        ownerProcess.signal(SIGKILL)
        _ = await ownerProcess.wait()
        _ = await runAgent(["guest", "gc", "--all"])
        // The filter table of this root's names (host-global; gc sets it up, nothing else removes it).
        _ = try? await SystemCommandRunner().run(
            Nft().deleteTable(family: "inet", name: GuestNetworkNames(layout: layout).table))
        dir.remove()
    }

    struct Result {
        var status: RunnerCore.ExitStatus
        var stdout: [UInt8]
        var stderr: String
        var response: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    var environment: [String: String?] {
        [
            "RUNNER_HOST_ROOT": layout.root, "RUNNER_HOOK_OWNER_PID": "\(owner)",
            "RUNNER_WORK_OWNER": "\(Self.ownerUID):\(Self.ownerUID)",
        ]
    }

    /// Starts the hook with `json` on stdin; returns it and where its output goes.
    func spawnHook(_ json: String) throws -> (process: ChildProcess, stdout: String, stderr: String) {
        let out = dir.appending("out-\(UInt32.random(in: 0...UInt32.max))")
        // What container-hooks.sh execs: runner-hook (steps to the relay, the rest to the agent).
        var command = Command(try #require(Self.hookClient), [])
        command.environment = environment
        command.workingDirectory = work + "/octo-repo/octo-repo"
        let process = try Spawner.spawn(
            command,
            options: SpawnOptions(
                standardInput: .bytes(Array((json + "\n").utf8)), standardOutput: .file(out + ".stdout"),
                standardError: .file(out + ".stderr")))
        return (process, out + ".stdout", out + ".stderr")
    }

    /// Runs the hook as user `uid` (no passwd entry needed) from a copy of the agent anyone may
    /// run, the way the runner runs it on a host: unprivileged.
    func hook(_ json: String, asUser uid: UInt32, client: String? = nil) async throws -> Result {
        let (process, stdout, stderr) = try await spawnHook(json, asUser: uid, client: client)
        let status = await process.wait()
        return Result(
            status: status, stdout: (try? FilePaths.read(stdout)) ?? [],
            stderr: String(decoding: (try? FilePaths.read(stderr)) ?? [], as: UTF8.self), response: "")
    }

    /// Starts the hook as user `uid` (see ``hook(_:asUser:client:)``): `client`, else the copy of
    /// runner-hook beside a copy of the agent.
    func spawnHook(_ json: String, asUser uid: UInt32, client chosen: String? = nil) async throws -> (
        process: ChildProcess, stdout: String, stderr: String
    ) {
        // runner-hook and the agent it hands calls to, side by side as in a release.
        let agent = dir.appending("bin/runner-agent")
        let client = dir.appending("bin/runner-hook")
        if !FilePaths.exists(client) {
            try FilePaths.createDirectory(dir.appending("bin"), mode: 0o755)
            let copy = Command("cp", [try #require(Self.agent), try #require(Self.hookClient), dir.appending("bin")])
            #expect(try await Spawner.spawn(copy).wait() == .exited(0))
            chmod(dir.path, 0o755)
        }
        #expect(FilePaths.exists(agent))
        let out = dir.appending("out-\(UInt32.random(in: 0...UInt32.max))")
        var command = Command(
            "setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--", chosen ?? client])
        command.environment = environment
        command.workingDirectory = work
        let process = try Spawner.spawn(
            command,
            options: SpawnOptions(
                standardInput: .bytes(Array((json + "\n").utf8)), standardOutput: .file(out + ".stdout"),
                standardError: .file(out + ".stderr")))
        return (process, out + ".stdout", out + ".stderr")
    }

    /// Runs the hook on `json` (responses go to a fresh response file, created empty as the runner does).
    func hook(_ json: String, responseFile: String? = nil) async throws -> Result {
        let (process, stdout, stderr) = try spawnHook(json)
        let status = await process.wait()
        return Result(
            status: status, stdout: (try? FilePaths.read(stdout)) ?? [],
            stderr: String(decoding: (try? FilePaths.read(stderr)) ?? [], as: UTF8.self),
            response: responseFile.flatMap { try? FilePaths.read($0) }.map { String(decoding: $0, as: UTF8.self) } ?? ""
        )
    }

    /// Runs `runner-agent ARGS` (or, with `asHelper`, the binary named ci-nspawn-run).
    func runAgent(
        _ arguments: [String], asHelper: Bool = false, environment: [String: String?]? = nil
    ) async -> Result {
        guard var executable = Self.agent else {
            return Result(status: .exited(127), stdout: [], stderr: "runner-agent is not built", response: "")
        }
        if asHelper {
            let link = dir.appending("ci-nspawn-run")
            if !FilePaths.exists(link) { symlink(executable, link) }
            executable = link
        }
        var command = Command(executable, arguments)
        command.environment = environment ?? self.environment
        let result = try? await SystemCommandRunner().run(command)
        return Result(
            status: result?.status ?? .exited(127), stdout: Array((result?.standardOutput ?? "").utf8),
            stderr: result?.standardError ?? "", response: "")
    }

    /// A new response file path, created empty like the runner does.
    func newResponseFile() throws -> String {
        let path = work + "/_temp/_runner_hook_responses/\(UInt32.random(in: 0...UInt32.max)).json"
        try AtomicFile.write("", to: path)
        return path
    }

    /// The payloads of this tree (work, externals, service port).
    var payloads: HookPayloads { HookPayloads(work: work, externals: externals, servicePort: servicePort) }

    /// The prepare_job fixture with its paths moved into this tree (``HookPayloads/prepareJob(responseFile:services:image:)``).
    func prepareJob(responseFile: String, services: String? = nil, image: String? = nil) throws -> String {
        try payloads.prepareJob(responseFile: responseFile, services: services, image: image)
    }

    /// One service (``HookPayloads/serviceJSON(image:ports:environment:options:)``).
    func serviceJSON(
        image: String = "svc:1", ports: [String]? = nil, environment: [String: String] = [:], options: String? = nil
    ) -> String {
        payloads.serviceJSON(image: image, ports: ports, environment: environment, options: options)
    }

    /// `prepareJob` without the job container (a services-only job).
    func prepareServicesOnly(responseFile: String, services: String) throws -> String {
        let json = try prepareJob(responseFile: responseFile, services: services)
        let start = try #require(json.firstRange(of: "\"container\":{"))
        let end = try #require(json.firstRange(of: ",\"services\":["))
        return String(json[..<start.lowerBound]) + "\"container\":null" + String(json[end.lowerBound...])
    }

    /// The first line an HTTP GET to 127.0.0.1:`port` answers with, from the host.
    static func httpStatusLine(port: UInt16) -> String {
        guard let fd = TCPSocket.connectLoopback(port: port) else { return "" }
        defer { close(fd) }
        let request = Array("GET / HTTP/1.0\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !answer.contains(UInt8(ascii: "\n")) {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        return String(decoding: answer.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
    }

    /// A free TCP port on the host (not the service's own).
    func freePort() -> UInt16 {
        while true {
            let port = UInt16.random(in: 30000...39999)
            if port != servicePort, TCPSocket.portIsFree(address: nil, port: port) { return port }
        }
    }

    /// The run_script_step fixture running `script` with bash, with `state` and a fresh script file.
    func runScriptStep(_ script: String, state: String, prependPath: String? = nil) throws -> String {
        let name = "\(UInt32.random(in: 0...UInt32.max)).sh"
        try AtomicFile.write(script, to: work + "/_temp/" + name)
        return try payloads.runScriptStep(scriptPath: "/__w/_temp/" + name, state: state, prependPath: prependPath)
    }

    /// The state object from a prepare_job response.
    static func state(of response: String) throws -> String { try HookPayloads.state(of: response) }

    func cleanupJob(state: String) throws -> String { try payloads.cleanupJob(state: state) }

    func replacing(_ text: String, _ old: String, _ new: String) throws -> String {
        try HookPayloads.replacing(text, old, new)
    }

    /// Everything our guests could leave: records, nspawn processes on this store, mounts.
    func leftovers() -> [String] {
        var found: [String] = []
        if let dir = opendir(layout.guestStateDirectory) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." { found.append("file " + name) }
            }
            closedir(dir)
        }
        for file in FilePaths.entries(of: layout.guestRelayDirectory) { found.append("relay socket " + file) }
        let ourRoot = Array("RUNNER_HOST_ROOT=\(layout.root)".utf8)
        for pid in ProcessTable.allPIDs() {
            let args = ProcessTable.commandLine(of: pid)
            if args.count > 2, args[1] == "relay",
                let environ = try? FilePaths.read("/proc/\(pid)/environ"),
                environ.split(separator: 0).contains(where: { Array($0) == ourRoot })
            {
                found.append("relay \(pid) \(args.joined(separator: " "))")
            } else if args.contains(where: { $0.contains(layout.imagesDirectory) }) {
                found.append("process \(pid) \(args.prefix(6).joined(separator: " "))")
            } else if ProcessTable.comm(of: pid) == "systemd", pid != 1,
                Self.rootMount(of: pid).contains(layout.root + "/")
            {
                // A guest's init that outlived its nspawn: its root is an overlay of our image.
                found.append("guest init \(pid) \(args.joined(separator: " "))")
            }
        }
        if let mounts = try? FilePaths.read("/proc/self/mountinfo") {
            for line in String(decoding: mounts, as: UTF8.self).split(separator: "\n") where line.contains(layout.root)
            {
                found.append("mount " + line)
            }
        }
        return found
    }

    /// Job bridges and nat tables of this layout's private networks (``GuestNetworkNames``).
    static func networkLeftovers(layout: HostLayout) async -> [String] {
        let names = GuestNetworkNames(layout: layout)
        let runner = SystemCommandRunner()
        var found: [String] = []
        if let links = try? await KernelNetworkLinks().hostLinks() {
            for link in links where link.kind == "bridge" && link.name.hasPrefix(names.bridgePrefix) {
                found.append("bridge " + link.name)
            }
        }
        if let tables = try? await runner.output(Nft().listTables()) {
            for table in JobNetwork.tables(json: tables) where names.jobID(table: table.name) != nil {
                found.append("nft table \(table.family) \(table.name)")
            }
        }
        return found
    }

    /// The line of `/proc/<pid>/mountinfo` for the process's `/` (its overlay's options).
    static func rootMount(of pid: Int32) -> String {
        guard let bytes = try? FilePaths.read("/proc/\(pid)/mountinfo") else { return "" }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        return lines.first { $0.split(separator: " ").dropFirst(4).first == "/" }.map(String.init) ?? ""
    }

    /// Waits (bounded) until no leftovers remain; returns what is still there.
    func leftoversAfterSettling(seconds: Double = 10) async -> [String] {
        let end = MonotonicClock.now() + seconds
        var found = leftovers() + (await Self.networkLeftovers(layout: layout))
        while !found.isEmpty && MonotonicClock.now() < end {
            try? await Task.sleep(for: .milliseconds(100))
            found = leftovers() + (await Self.networkLeftovers(layout: layout))
        }
        return found
    }
}

extension String {
    func trimmingSuffixNewline() -> String {
        var s = self
        while s.hasSuffix("\n") { s.removeLast() }
        return s
    }
}
