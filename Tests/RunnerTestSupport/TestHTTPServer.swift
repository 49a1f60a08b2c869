import Foundation
import FoundationEssentials
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A real HTTP server on 127.0.0.1 (python3's http.server) standing in for GitHub release
/// downloads. It serves `files/` under its directory, logs every request path, and answers
/// 503 to the next N requests after ``failNext(_:)``.
public final class TestHTTPServer: Sendable {
    public let directory: String
    public let port: Int
    /// The server's pid: started in the background by `sh` (Foundation's Process and
    /// swift-subprocess must not both reap children in one process).
    private let pid: Int32

    static let script = """
        import http.server, os, sys
        root = sys.argv[1]
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with open(os.path.join(root, "requests.log"), "a") as log:
                    log.write(self.path + "\\n")
                fails = os.path.join(root, "fail-next")
                if os.path.exists(fails):
                    left = int(open(fails).read() or "0")
                    if left > 0:
                        open(fails, "w").write(str(left - 1))
                        self.send_response(503)
                        self.end_headers()
                        return
                path = os.path.join(root, "files", self.path.lstrip("/"))
                if not os.path.isfile(path):
                    self.send_response(404)
                    self.end_headers()
                    return
                data = open(path, "rb").read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        with open(os.path.join(root, "port.tmp"), "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(os.path.join(root, "port.tmp"), os.path.join(root, "port"))
        server.serve_forever()
        """

    /// Starts a server rooted at `directory` (created) and waits until it listens.
    public init(directory: String) async throws {
        self.directory = directory
        try FilePaths.createDirectory(directory + "/files")
        try AtomicFile.write(Self.script, to: directory + "/server.py")
        let started = try await runTool(
            "sh",
            ["-c", "/usr/bin/python3 \"$1/server.py\" \"$1\" </dev/null >/dev/null 2>&1 & echo $!", "sh", directory])
        guard started.status.isSuccess,
            let pid = Int32(started.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            throw RunnerError(
                .commandFailed, input: "test HTTP server", problem: "could not start: \(started.standardError)")
        }
        self.pid = pid
        var port: Int? = nil
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: directory + "/port", encoding: .utf8) {
                port = Int(text)
                break
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        guard let port else {
            kill(pid, SIGTERM)
            throw RunnerError(.timeout, input: "test HTTP server", problem: "did not start")
        }
        self.port = port
    }

    /// `http://127.0.0.1:PORT`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Puts `bytes` at `/relative`.
    public func serve(_ bytes: [UInt8], at relative: String) throws {
        try AtomicFile.write(bytes, to: directory + "/files/" + relative)
    }

    /// Answers the next `count` requests with 503.
    public func failNext(_ count: Int) throws {
        try AtomicFile.write("\(count)", to: directory + "/fail-next")
    }

    /// The paths requested so far.
    public var requests: [String] {
        let text = (try? String(contentsOfFile: directory + "/requests.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    public func stop() {
        kill(pid, SIGTERM)
    }
}
