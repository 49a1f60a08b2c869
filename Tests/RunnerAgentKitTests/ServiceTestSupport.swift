import Foundation
import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Paths of this test target's fixtures (the fake GitHub API, the fake runner package).
enum Fixtures {
    static let directory: String = FilePaths.parent(of: FilePaths.parent(of: #filePath)) + "/ServiceFixtures"
    static var fakeGitHub: String { directory + "/fake_github.py" }
    static var fakeRunner: String { directory + "/fake-runner" }
    /// The repository root (two levels above Tests/RunnerAgentKitTests).
    static var repositoryRoot: String { FilePaths.parent(of: FilePaths.parent(of: FilePaths.parent(of: #filePath))) }
}

/// The fake GitHub API (Fixtures/fake_github.py) running on 127.0.0.1 on a free port.
final class FakeGitHub: Sendable {
    let stateDirectory: String
    let port: Int
    let pid: pid_t

    struct AppKey {
        let appID: String
        let installationID: Int
        let privateKeyPEM: String
        let modulusHex: String
        let exponentHex: String
    }

    init(
        directory: String, pats: [String] = [], app: AppKey? = nil, registrationTokens: [String] = [],
        downloads: String? = nil, jitUnsupported: Bool = false
    ) async throws {
        stateDirectory = directory + "/fake-github"
        try FilePaths.createDirectory(stateDirectory)
        var config: [String: Any] = [
            "pats": pats, "registration_tokens": registrationTokens, "app_id": app?.appID ?? "0",
            "installation_id": app?.installationID ?? 0,
            "public_key": ["n": app?.modulusHex ?? "01", "e": app?.exponentHex ?? "01"],
        ]
        if let downloads { config["downloads"] = downloads }
        if jitUnsupported { config["jit_unsupported"] = 1 }
        try AtomicFile.write(Array(JSONSerializationLite.encode(config).utf8), to: stateDirectory + "/config.json")
        let child = try TestProcess.start(
            Command("python3", [Fixtures.fakeGitHub, stateDirectory]),
            environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"])
        pid = child.pid
        let portFile = stateDirectory + "/port"
        var waited = 0
        while !FilePaths.exists(portFile) {
            if let status = child.poll() {
                throw RunnerError(
                    .internal, input: "fake_github.py",
                    problem: "exited (\(status)): "
                        + String(decoding: child.readAvailableOutput(), as: UTF8.self))
            }
            try await Task.sleep(for: .milliseconds(20))
            waited += 1
            if waited > 500 { throw RunnerError(.timeout, input: "fake_github.py", problem: "did not start") }
        }
        port = Int(String(decoding: try FilePaths.read(portFile), as: UTF8.self)) ?? 0
        keepAlive.withLock { $0 = child }
    }

    private let keepAlive = Mutex<ChildProcess?>(nil)

    var baseURL: String { "http://127.0.0.1:\(port)" }

    func stop() {
        keepAlive.withLock { child in
            child?.signal(SIGKILL)
            // Killed: it ends at once.
            _ = child?.waitBlocking()
            child = nil
        }
    }

    /// The fake's call counters.
    func stats() async throws -> [String: Int] {
        let text = try await SystemCommandRunner().output(Command("curl", ["-s", baseURL + "/_fake/stats"]))
        return JSONSerializationLite.decodeCounts(text)
    }

    func deleteRegistrations() async throws {
        try await SystemCommandRunner().output(
            Command("curl", ["-s", "-X", "POST", baseURL + "/_fake/delete-registrations"]))
    }
}

/// Tiny JSON helpers for the tests' plain dictionaries.
enum JSONSerializationLite {
    static func encode(_ value: Any) -> String {
        switch value {
        case let string as String:
            return "\""
                + string.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
                + "\""
        case let int as Int: return String(int)
        case let array as [Any]: return "[" + array.map(encode).joined(separator: ",") + "]"
        case let dict as [String: Any]:
            return "{" + dict.keys.sorted().map { encode($0) + ":" + encode(dict[$0]!) }.joined(separator: ",") + "}"
        default: return "null"
        }
    }

    static func decodeCounts(_ text: String) -> [String: Int] {
        (try? JSONDecoder().decode([String: Int].self, from: Data(text.utf8))) ?? [:]
    }
}

/// A test-made runner package: the fake config.sh/run.sh under the layout's runner directory,
/// with `.fake/` holding the API URL, the exit-code script and what the scripts recorded.
struct FakeRunnerPackage {
    let directory: String
    var fake: String { directory + "/.fake" }

    init(layout: HostLayout, apiURL: String, script: [String] = [], sleep: String = "0.3") throws {
        directory = layout.runnerDirectory
        try FilePaths.createDirectory(fake)
        // Copied by a separate process: a file this (multithreaded) test process wrote could still
        // be open in a child another test is forking, and exec would then fail with ETXTBSY.
        let copy = try TestProcess.start(
            Command("cp", [Fixtures.fakeRunner + "/config.sh", Fixtures.fakeRunner + "/run.sh", directory + "/"]),
            environment: ["PATH": "/usr/bin:/bin"])
        guard copy.waitBlocking() == .exited(0) else {
            throw RunnerError(.io, input: directory, problem: "could not copy the fake runner scripts")
        }
        try AtomicFile.write(apiURL, to: fake + "/api")
        try AtomicFile.write(sleep, to: fake + "/sleep")
        try AtomicFile.write(script.map { $0 + "\n" }.joined(), to: fake + "/script")
    }

    /// Lines of `.fake/calls`: `config.sh ARGS` / `run.sh ARGS`.
    var calls: [String] {
        guard let bytes = try? FilePaths.read(fake + "/calls") else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The environments recorded by the scripts (`env.config.*` or `env.run.*`), oldest first.
    func environments(_ kind: String) -> [[String: String]] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: fake)) ?? [])
            .filter { $0.hasPrefix("env.\(kind).") }.sorted()
        return names.map { name in
            let text = String(decoding: (try? FilePaths.read(fake + "/" + name)) ?? [], as: UTF8.self)
            var values: [String: String] = [:]
            for line in text.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                values[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
            return values
        }
    }

    var signals: String { String(decoding: (try? FilePaths.read(fake + "/signals")) ?? [], as: UTF8.self) }
}

/// Captures log lines in memory so tests can search them for secrets.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }

    func logger() -> Logger {
        Logger(label: "test") { _ in CapturingHandler(capture: self) }
    }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            var line = "\(event.level): \(event.message)"
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
                line += " \(key)=\(value)"
            }
            capture.append(line)
        }
    }
}

/// Reads every process's `/proc/<pid>/cmdline` in a loop while a test runs, and remembers
/// any that contains a secret (and how many commands of interest it saw at all).
final class ArgvWatcher: Sendable {
    private struct State {
        var leaks: [String] = []
        var seen: Set<String> = []
        var running = true
    }
    private let state = Mutex(State())
    private let secrets: [String]
    private let scope: String

    /// Watches for `secrets`; counts commands of interest only when their argv mentions `scope`
    /// (the test's own directory: other tests run their own fake runners in parallel).
    init(secrets: [String], scope: String) {
        self.secrets = secrets.filter { !$0.isEmpty }
        self.scope = scope
    }

    /// Scans on a thread of its own: the cooperative pool (one thread per core) is busy with
    /// the tests running in parallel and could starve a task long enough to miss a process.
    func start() -> Task<Void, Never> {
        let finished = Mutex(false)
        let thread = Thread { [self] in
            while state.withLock({ $0.running }) {
                scan()
                usleep(2000)
            }
            finished.withLock { $0 = true }
        }
        thread.start()
        return Task {
            while !finished.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(5)) }
        }
    }

    func stop() { state.withLock { $0.running = false } }
    var leaks: [String] { state.withLock { $0.leaks } }
    /// Basenames of argv[0]/argv[1] seen (e.g. "config.sh", "run.sh", "curl").
    var seen: Set<String> { state.withLock { $0.seen } }

    private func scan() {
        guard let directory = opendir("/proc") else { return }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            guard name.allSatisfy(\.isNumber) else { continue }
            let fd = open("/proc/\(name)/cmdline", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard n > 0 else { continue }
            let argv = buffer[0..<n].split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            let line = argv.joined(separator: " ")
            let interesting = argv.prefix(2).map { FilePaths.basename($0) }
            state.withLock { state in
                for word in interesting
                where ["config.sh", "run.sh", "curl", "setpriv"].contains(word) && line.contains(scope) {
                    state.seen.insert(word)
                }
                for secret in secrets where line.contains(secret) {
                    state.leaks.append(line)
                }
            }
        }
    }
}

/// The name of the user the tests run as.
var currentUserName: String {
    guard let entry = getpwuid(geteuid()) else { return "root" }
    return String(cString: entry.pointee.pw_name)
}
