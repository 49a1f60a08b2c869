import Foundation
import RunnerCore
import RunnerSystem
import RunnerTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Paths of the repository these tests run in.
enum Repo {
    /// The repository root (where Package.swift is).
    static let root: String = {
        var path = #filePath
        for _ in 0..<4 { path = FilePaths.parent(of: path) }
        return path
    }()

    /// `<root>/cloud-init/NAME`.
    static func cloudInit(_ name: String) -> String { root + "/cloud-init/" + name }

    /// The text of a repository file.
    static func text(_ relative: String) throws -> String {
        try String(decoding: FilePaths.read(root + "/" + relative), as: UTF8.self)
    }

    /// The directory `swift build` put the executables in.
    static var productsDirectory: String {
        FilePaths.parent(of: Bundle.module.bundlePath)
    }
}

/// Runs a tool for a test and returns its result (output captured, non-zero exit is data).
func runTool(
    _ executable: String, _ arguments: [String], environment: [String: String?] = [:], input: [UInt8]? = nil
) async throws -> CommandResult {
    try await SystemCommandRunner().run(
        Command(executable, arguments, environment: environment), input: input, output: .captured)
}

/// Site configs the user-data tests render.
enum SiteConfigs {
    static let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

    /// What most sites write: a repo URL, a token file, labels.
    static let minimal = """
        # site.env for the golden test
        RUNNER_GITHUB_URL=https://github.com/acme/widgets
        RUNNER_REGISTRATION_TOKEN=AAAA-SECRET-TOKEN-0001
        RUNNER_LABELS=linux,nspawn
        RUNNER_BOOTSTRAP_REPO_URL=https://github.com/acme/runner

        """

    /// Everything set, with an inline JIT config of realistic size: the largest realistic one.
    static var largest: String {
        // A JIT config is base64 of JSON holding .runner, .credentials and an RSA key: ~3 KB.
        let jit = String(Data((0..<2300).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }).base64EncodedString())
        let images = ["debian-bookworm", "debian-trixie", "ubuntu-jammy", "ubuntu-noble", "alpine-3-20"].map {
            "\($0)=https://artifacts.internal.example.com/runner/v1.2/rootfs-\($0)-v1.2.tar.zst@sha256:\(hex)"
        }
        return """
            RUNNER_GITHUB_URL=https://ghes.internal.example.com/platform-engineering
            RUNNER_NAME=build-eu-west-1-0042
            RUNNER_LABELS="linux,x64,nspawn,eu-west-1,large,gpu-none,team-platform,build"
            RUNNER_GROUP="Platform Engineering"
            RUNNER_EPHEMERAL=true
            RUNNER_NO_DEFAULT_LABELS=false
            RUNNER_WORK_DIR=/var/lib/runner/work
            RUNNER_USER=runner
            RUNNER_JIT_CONFIG=\(jit)
            RUNNER_VERSION=2.336.0
            RUNNER_TARBALL_URL=https://artifacts.internal.example.com/actions-runner/actions-runner-linux-x64-2.336.0.tar.gz
            RUNNER_TARBALL_SHA256=\(hex)
            RUNNER_BUNDLE_URL=https://artifacts.internal.example.com/runner/v1.2/runner-bundle-v1.2-linux-x86_64.tar.gz
            RUNNER_BOOTSTRAP_MODE=bundle
            RUNNER_BOOTSTRAP_REPO_URL=https://ghes.internal.example.com/platform-engineering/runner
            RUNNER_IMAGES="\(images.joined(separator: " "))"
            RUNNER_DEFAULT_IMAGE=debian-bookworm
            RUNNER_IMAGE_ALIASES="ubuntu:22.04=ubuntu-jammy ubuntu:24.04=ubuntu-noble node:20=debian-bookworm node:22=debian-bookworm python:3.12=debian-bookworm alpine:3.20=alpine-3-20"
            RUNNER_REQUIRE_JOB_CONTAINER=true
            RUNNER_ALLOW_DOCKER_SOCK=false
            RUNNER_GUEST_MOUNT_ALLOW="/srv/cache /srv/toolcache"
            HTTP_PROXY=http://proxy.internal.example.com:3128
            HTTPS_PROXY=http://proxy.internal.example.com:3128
            NO_PROXY=localhost,127.0.0.1,.internal.example.com,169.254.169.254

            """
    }

    /// Git mode with a GitHub App and values that need quoting.
    static let gitApp = """
        RUNNER_GITHUB_URL=https://github.com/acme
        RUNNER_APP_ID=123456
        RUNNER_APP_INSTALLATION_ID=7890123
        RUNNER_APP_PRIVATE_KEY_FILE=/etc/runner/app.pem
        RUNNER_GROUP="Team \\"Q\\" $HOME `x` grüße"
        RUNNER_BOOTSTRAP_MODE=git
        RUNNER_BOOTSTRAP_REPO_URL=https://github.com/acme/runner.git

        """
}

/// A real HTTP server on 127.0.0.1 (python3's http.server) standing in for GitHub release
/// downloads. It serves `files/` under its directory, logs every request path, and answers
/// 503 to the next N requests after ``failNext(_:)``.
final class TestHTTPServer: Sendable {
    let directory: String
    let port: Int
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
    init(directory: String) async throws {
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
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Puts `bytes` at `/relative`.
    func serve(_ bytes: [UInt8], at relative: String) throws {
        try AtomicFile.write(bytes, to: directory + "/files/" + relative)
    }

    /// Answers the next `count` requests with 503.
    func failNext(_ count: Int) throws {
        try AtomicFile.write("\(count)", to: directory + "/fail-next")
    }

    /// The paths requested so far.
    var requests: [String] {
        let text = (try? String(contentsOfFile: directory + "/requests.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    func stop() {
        kill(pid, SIGTERM)
    }
}

/// A test bundle tarball whose `bin/runner-agent` is a stub that records its argv in
/// `$RUNNER_ROOT/agent-argv` (or `/var/lib/runner/agent-argv` when RUNNER_ROOT is unset).
/// A bundle whose `bin/runner-agent` records its argv and exits `exitStatus` (or `$STUB_AGENT_EXIT`).
func makeStubBundle(in directory: String, withAgent: Bool = true, exitStatus: Int32 = 0) async throws -> [UInt8] {
    let tree = directory + "/bundle-tree"
    try FilePaths.createDirectory(tree + "/bin")
    try AtomicFile.write(#"{"version":"v1.2"}"#, to: tree + "/MANIFEST.json")
    var members = ["MANIFEST.json"]
    if withAgent {
        let stub = """
            #!/bin/sh
            mkdir -p "${RUNNER_ROOT:-}/var/lib/runner"
            printf '%s\\n' "$@" > "${RUNNER_ROOT:-}/var/lib/runner/agent-argv"
            echo "stub runner-agent: $*"
            exit "${STUB_AGENT_EXIT:-\(exitStatus)}"

            """
        try AtomicFile.write(stub, to: tree + "/bin/runner-agent", mode: 0o755)
        members.append("bin/runner-agent")
    }
    let tarball = directory + "/bundle.tar.gz"
    let result = try await runTool("tar", ["-czf", tarball, "-C", tree] + members)
    try result.checked(Command("tar"))
    return try FilePaths.read(tarball)
}
