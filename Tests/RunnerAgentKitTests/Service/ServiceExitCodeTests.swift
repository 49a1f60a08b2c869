import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

@Suite(.requires("python3"), .requires("curl"))
struct ServiceExitCodeTests {
    /// The runner's exit-code contract: 2/3/4 relaunch, 0/1/5 stop, 7 deprecated.
    @Test(arguments: [
        (Int32(0), ServiceExit.stopped, 1), (2, .stopped, 2), (3, .stopped, 2), (4, .stopped, 2),
        (1, .runnerTerminated, 1), (5, .sessionConflict, 1), (7, .versionDeprecated, 1), (9, .software, 1),
    ])
    func exitCodeContract(code: Int32, expected: ServiceExit, runs: Int) async throws {
        let token = "AGIVENREGISTRATIONTOKEN0004"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["\(code) 0 run", "0 0 run"])
        defer { h.finish() }
        let exit = try await h.supervisor(try h.settings(["RUNNER_REGISTRATION_TOKEN": token])).run()
        #expect(exit == expected)
        #expect(h.package.calls.filter { $0 == "run.sh" }.count == runs)
        if code == 7 {
            #expect(h.logs.all.contains { $0.contains("deprecated") && $0.contains("RUNNER_VERSION") })
        }
    }
}
