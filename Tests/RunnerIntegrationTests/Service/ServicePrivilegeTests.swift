import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.requires("python3"), .requires("curl"), .requires("setpriv"))
struct ServicePrivilegeTests {
    /// As root, config.sh and run.sh run as the configured unprivileged user (via setpriv).
    /// (uucp, not nobody: the supervisor kills every process of its runner user, and other
    /// programs on a test machine may run as nobody.)
    @Test(.requiresRoot, .enabled(if: getpwnam("uucp") != nil, "needs the system user uucp"))
    func theRunnerRunsAsTheRunnerUser() async throws {
        let token = "AGIVENREGISTRATIONTOKEN0009"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 0 run"])
        defer { h.finish() }
        let nobody = try h.handOver(to: "uucp")
        let supervisor = h.supervisor(try h.settings(["RUNNER_REGISTRATION_TOKEN": token, "RUNNER_USER": "uucp"]))
        let exit = try await h.run(supervisor, secrets: [token])
        #expect(exit == .stopped)
        let uid = String(decoding: try FilePaths.read(h.package.fake + "/uid.run"), as: UTF8.self)
        #expect(uid.trimmedWhitespace == "\(nobody.pw_uid)")
        let runEnv = try #require(h.package.environments("run").first)
        #expect(runEnv["USER"] == "uucp")
        #expect(runEnv["RUNNER_ALLOW_RUNASROOT"] == nil)
    }
}
