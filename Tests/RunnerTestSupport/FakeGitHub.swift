import FoundationEssentials
import RunnerCore
import RunnerSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The fake GitHub API (Fixtures/fake_github.py) running on 127.0.0.1 on a free port.
public final class FakeGitHub: Sendable {
    public let stateDirectory: String
    public let port: Int

    /// A GitHub App the fake knows: its id, its installation and its RSA key.
    public struct AppKey: Sendable {
        public let appID: String
        public let installationID: Int
        public let privateKeyPEM: String
        public let modulusHex: String
        public let exponentHex: String

        public init(
            appID: String, installationID: Int, privateKeyPEM: String, modulusHex: String, exponentHex: String
        ) {
            self.appID = appID
            self.installationID = installationID
            self.privateKeyPEM = privateKeyPEM
            self.modulusHex = modulusHex
            self.exponentHex = exponentHex
        }
    }

    public init(
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

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Kills the server (its own process group) and reaps it.
    public func stop() {
        keepAlive.withLock { child in
            guard let process = child else { return }
            process.signalGroup(SIGKILL)
            _ = process.waitBlocking()
            child = nil
        }
    }

    /// The fake's call counters.
    public func stats() async throws -> [String: Int] {
        let text = try await SystemCommandRunner().output(Command("curl", ["-s", baseURL + "/_fake/stats"]))
        return JSONSerializationLite.decodeCounts(text)
    }

    public func deleteRegistrations() async throws {
        try await SystemCommandRunner().output(
            Command("curl", ["-s", "-X", "POST", baseURL + "/_fake/delete-registrations"]))
    }
}

/// Tiny JSON helpers for the tests' plain dictionaries.
public enum JSONSerializationLite {
    public static func encode(_ value: Any) -> String {
        switch value {
        case let string as String:
            return "\""
                + string.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
                + "\""
        case let int as Int: return String(int)
        case let array as [Any]: return "[" + array.map(encode).joined(separator: ",") + "]"
        case let dict as [String: Any]:
            return "{"
                + dict.sorted { $0.key < $1.key }.map { encode($0.key) + ":" + encode($0.value) }.joined(separator: ",")
                + "}"
        default: return "null"
        }
    }

    public static func decodeCounts(_ text: String) -> [String: Int] {
        (try? JSONDecoder().decode([String: Int].self, from: Data(text.utf8))) ?? [:]
    }
}
