import Foundation
import RunnerCore
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `cloud-init/bootstrap.sh` run for real with `sh`, against a throwaway root and a real HTTP
/// server on 127.0.0.1.
@Suite(.requires("curl"), .enabled(if: FilePaths.exists("/usr/bin/python3"), "needs /usr/bin/python3"))
struct BootstrapScriptTests {
    struct Fixture {
        let root: TemporaryDirectory
        let server: TestHTTPServer
        let bundle: [UInt8]

        var layout: HostLayout { root.layout }
        var cacheFiles: [String] {
            (try? FileManager.default.contentsOfDirectory(atPath: layout.cacheDirectory))?.sorted() ?? []
        }
        var agentArgv: [String]? {
            (try? String(contentsOfFile: layout.path("/var/lib/runner/agent-argv"), encoding: .utf8))?
                .split(separator: "\n").map(String.init)
        }

        func run(_ environment: [String: String]) async throws -> CommandResult {
            var env: [String: String?] = [
                "RUNNER_ROOT": root.path + "/host",
                "RUNNER_BOOTSTRAP_REPO_REF": "v1.2",
                "http_proxy": nil, "https_proxy": nil, "HTTP_PROXY": nil, "HTTPS_PROXY": nil, "no_proxy": nil,
                "NO_PROXY": nil, "RUNNER_BUNDLE_URL": nil, "RUNNER_BUNDLE_SHA256": nil, "RUNNER_BOOTSTRAP_MODE": nil,
                "RUNNER_BOOTSTRAP_REPO_URL": nil,
            ]
            for (key, value) in environment { env[key] = value }
            return try await runTool("sh", [Repo.cloudInit("bootstrap.sh")], environment: env)
        }
    }

    func withFixture(agent: Bool = true, _ body: (Fixture) async throws -> Void) async throws {
        try await withTemporaryDirectory("boot") { dir in
            let server = try await TestHTTPServer(directory: dir.appending("server"))
            defer { server.stop() }
            let bundle = try await makeStubBundle(in: dir.path, withAgent: agent)
            try server.serve(bundle, at: "dl/bundle.tar.gz")
            try await body(Fixture(root: try TemporaryDirectory("host"), server: server, bundle: bundle))
        }
    }

    func bundleEnvironment(_ f: Fixture, sha: String? = nil) -> [String: String] {
        [
            "RUNNER_BUNDLE_URL": f.server.baseURL + "/dl/bundle.tar.gz",
            "RUNNER_BUNDLE_SHA256": sha ?? SHA256Digest.hex(of: f.bundle),
        ]
    }

    @Test func successExecsTheInstallerWithTheVerifiedBundle() async throws {
        try await withFixture { f in
            defer { f.root.remove() }
            let host = HostLayout(root: f.root.path + "/host")
            let result = try await f.run(bundleEnvironment(f))
            #expect(result.status.isSuccess, "\(result.standardError)")
            let bundle = host.cacheDirectory + "/runner-bundle-v1.2.tar.gz"
            let argv = try String(contentsOfFile: host.path("/var/lib/runner/agent-argv"), encoding: .utf8)
            #expect(argv == "install\n--bundle\n\(bundle)\n")
            #expect(try SHA256Digest.hex(ofFile: bundle) == SHA256Digest.hex(of: f.bundle))
            #expect(result.standardOutput.contains("bootstrap: bundle verified"))
            #expect(result.standardOutput.contains("stub runner-agent: install --bundle"))
            let left = try FileManager.default.contentsOfDirectory(atPath: host.cacheDirectory).sorted()
            #expect(left == ["runner-agent-v1.2", "runner-bundle-v1.2.tar.gz"])
        }
    }

    /// The installer is exec'd: its exit status is the unit's, so its configuration error (78)
    /// stops the retries and anything else is retried.
    @Test(arguments: [0, 1, 69, 78])
    func theInstallersExitStatusIsTheUnits(_ status: Int32) async throws {
        try await withFixture { f in
            defer { f.root.remove() }
            var environment = bundleEnvironment(f)
            environment["STUB_AGENT_EXIT"] = String(status)
            let result = try await f.run(environment)
            #expect(result.status == .exited(status), "\(result.standardError)")
            #expect(result.standardOutput.contains("stub runner-agent: install --bundle"))
        }
    }

    @Test func markerPresentIsANoOp() async throws {
        try await withFixture { f in
            defer { f.root.remove() }
            let host = HostLayout(root: f.root.path + "/host")
            try AtomicFile.write("", to: host.installedMarker)
            let result = try await f.run(bundleEnvironment(f))
            #expect(result.status.isSuccess)
            #expect(result.standardOutput.contains("already installed, nothing to do"))
            #expect(f.server.requests.isEmpty)
            #expect(!FilePaths.exists(host.cacheDirectory))
        }
    }

    @Test func digestMismatchFailsAndLeavesNothing() async throws {
        try await withFixture { f in
            defer { f.root.remove() }
            let host = HostLayout(root: f.root.path + "/host")
            let wrong = String(repeating: "ab", count: 32)
            let result = try await f.run(bundleEnvironment(f, sha: wrong))
            #expect(result.status == .exited(1))
            #expect(result.standardError.contains("sha256 mismatch"))
            #expect(result.standardError.contains("expected \(wrong), got \(SHA256Digest.hex(of: f.bundle))"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: host.cacheDirectory).isEmpty)
            #expect(!FilePaths.exists(host.path("/var/lib/runner/agent-argv")))
        }
    }

    @Test func serverErrorFailsClearlyThenTheNextRunSucceeds() async throws {
        try await withFixture { f in
            defer { f.root.remove() }
            let host = HostLayout(root: f.root.path + "/host")
            try f.server.failNext(1)
            let first = try await f.run(bundleEnvironment(f))
            #expect(first.status == .exited(1))
            #expect(first.standardError.contains("503"))
            #expect(
                first.standardError.contains(
                    "bootstrap: error: could not download \(f.server.baseURL)/dl/bundle.tar.gz"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: host.cacheDirectory).isEmpty)
            let second = try await f.run(bundleEnvironment(f))
            #expect(second.status.isSuccess, "\(second.standardError)")
            #expect(FilePaths.exists(host.path("/var/lib/runner/agent-argv")))
            #expect(f.server.requests == ["/dl/bundle.tar.gz", "/dl/bundle.tar.gz"])
        }
    }

    @Test func releaseAssetURLIsDerivedFromTheRepository() async throws {
        try await withFixture { f in
            defer { f.root.remove() }
            let arch = try await runTool("uname", ["-m"]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            let asset = "acme/runner/releases/download/v1.2/runner-bundle-v1.2-linux-\(arch).tar.gz"
            try f.server.serve(f.bundle, at: asset)
            let result = try await f.run([
                "RUNNER_BOOTSTRAP_REPO_URL": f.server.baseURL + "/acme/runner.git",
                "RUNNER_BUNDLE_SHA256": SHA256Digest.hex(of: f.bundle).uppercased(),
            ])
            #expect(result.status.isSuccess, "\(result.standardError)")
            #expect(f.server.requests == ["/" + asset])
        }
    }

    @Test func bundleWithoutAgentFailsAndLeavesNothing() async throws {
        try await withFixture(agent: false) { f in
            defer { f.root.remove() }
            let host = HostLayout(root: f.root.path + "/host")
            let result = try await f.run(bundleEnvironment(f))
            #expect(result.status == .exited(1))
            #expect(result.standardError.contains("has no bin/runner-agent"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: host.cacheDirectory).isEmpty)
        }
    }

    @Test func symlinkedAgentIsRefused() async throws {
        try await withTemporaryDirectory("sym") { dir in
            let tree = dir.appending("tree")
            try FilePaths.createDirectory(tree + "/bin")
            guard symlink("/etc/passwd", tree + "/bin/runner-agent") == 0 else {
                throw RunnerError.posix("symlink", tree, fix: nil)
            }
            let made = try await runTool("tar", ["-czf", dir.appending("evil.tar.gz"), "-C", tree, "bin/runner-agent"])
            try made.checked(Command("tar"))
            try await withFixture { f in
                defer { f.root.remove() }
                let evil = try FilePaths.read(dir.appending("evil.tar.gz"))
                try f.server.serve(evil, at: "dl/evil.tar.gz")
                let result = try await f.run([
                    "RUNNER_BUNDLE_URL": f.server.baseURL + "/dl/evil.tar.gz",
                    "RUNNER_BUNDLE_SHA256": SHA256Digest.hex(of: evil),
                ])
                #expect(result.status == .exited(1))
                #expect(result.standardError.contains("is not a regular file"))
                let host = HostLayout(root: f.root.path + "/host")
                #expect(try FileManager.default.contentsOfDirectory(atPath: host.cacheDirectory).isEmpty)
            }
        }
    }

    @Test func missingSettingsAreNamed() async throws {
        try await withFixture { f in
            defer { f.root.remove() }
            // Configuration errors exit 78 (EX_CONFIG): runner-install.service does not retry them.
            let noRef = try await f.run(["RUNNER_BOOTSTRAP_REPO_REF": ""])
            #expect(noRef.status == .exited(78))
            #expect(noRef.standardError.contains("RUNNER_BOOTSTRAP_REPO_REF is not set"))
            #expect(noRef.standardError.contains("a configuration error: not retried"))
            let badRef = try await f.run(["RUNNER_BOOTSTRAP_REPO_REF": "../x"])
            #expect(badRef.status == .exited(78))
            let noSHA = try await f.run(["RUNNER_BUNDLE_URL": f.server.baseURL + "/dl/bundle.tar.gz"])
            #expect(noSHA.status == .exited(78))
            #expect(noSHA.standardError.contains("RUNNER_BUNDLE_SHA256 is not set"))
            let badSHA = try await f.run([
                "RUNNER_BUNDLE_URL": f.server.baseURL + "/dl/x", "RUNNER_BUNDLE_SHA256": "ab",
            ])
            #expect(badSHA.status == .exited(78))
            let noURL = try await f.run(["RUNNER_BUNDLE_SHA256": SHA256Digest.hex(of: f.bundle)])
            #expect(noURL.status == .exited(78))
            #expect(noURL.standardError.contains("neither RUNNER_BUNDLE_URL nor RUNNER_BOOTSTRAP_REPO_URL"))
            let badMode = try await f.run(["RUNNER_BOOTSTRAP_MODE": "tarball"])
            #expect(badMode.status == .exited(78))
            #expect(badMode.standardError.contains("RUNNER_BOOTSTRAP_MODE=tarball is not one of: bundle, git"))
            let gitWithoutRepo = try await f.run(["RUNNER_BOOTSTRAP_MODE": "git"])
            #expect(gitWithoutRepo.status == .exited(78))
            #expect(f.server.requests.isEmpty)
        }
    }

    @Test(.requires("git")) func gitModeClonesTheRefAndExecsTheInstallerFromTheCheckout() async throws {
        try await withFixture { f in
            defer { f.root.remove() }
            let repo = f.root.path + "/repo"
            try FilePaths.createDirectory(repo + "/bin")
            let stub = "#!/bin/sh\nprintf '%s\\n' \"$(pwd)\" \"$@\" > \"$RUNNER_ROOT/var/lib/runner/agent-argv\"\n"
            try AtomicFile.write(stub, to: repo + "/bin/runner-agent", mode: 0o755)
            let git: [String: String?] = [
                "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.com",
            ]
            for args in [["init", "-q"], ["add", "."], ["commit", "-qm", "v1.2"], ["tag", "v1.2"]] {
                let r = try await runTool("git", ["-C", repo] + args, environment: git)
                try #require(r.status.isSuccess, "\(r.standardError)")
            }
            try FilePaths.createDirectory(f.root.path + "/host/var/lib/runner")
            let result = try await f.run([
                "RUNNER_BOOTSTRAP_MODE": "git", "RUNNER_BOOTSTRAP_REPO_URL": "file://" + repo,
            ])
            #expect(result.status.isSuccess, "\(result.standardError)")
            let host = HostLayout(root: f.root.path + "/host")
            let argv = try String(contentsOfFile: host.path("/var/lib/runner/agent-argv"), encoding: .utf8)
            #expect(argv == "\(host.cacheDirectory)/src-v1.2\ninstall\n--source\n\(host.cacheDirectory)/src-v1.2\n")
        }
    }

    @Test(.requires("shellcheck")) func shellcheckClean() async throws {
        let result = try await runTool("shellcheck", ["-x", Repo.cloudInit("bootstrap.sh")])
        #expect(result.status.isSuccess, "\(result.standardOutput)")
    }
}
