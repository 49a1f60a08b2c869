import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

#if canImport(Glibc)
    import Glibc
#endif

/// Stopping the supervisor: SIGINT to the runner, a kill after the bound, a running job first.
/// (Serialized: each test bounds how long a stop takes.)
@Suite(.serialized, .requires("python3"), .requires("curl"))
struct ServiceStopTests {
    @Test func stopAsksTheRunnerToStopWithSIGINT() async throws {
        let token = "AGIVENREGISTRATIONTOKEN0005"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 0 hold"])
        defer { h.finish() }
        let supervisor = h.supervisor(try h.settings(["RUNNER_REGISTRATION_TOKEN": token]))
        async let exit = supervisor.run()
        try await waitForRun(h.package)
        let start = ContinuousClock.now
        supervisor.requestStop()
        #expect(try await exit == .stopped)
        #expect(ContinuousClock.now - start < .seconds(5), "the runner exits on SIGINT; slack for a loaded machine")
        #expect(h.package.signals.contains("SIGINT"))
        #expect(h.output.all.contains { $0.contains("Exiting...") })
    }

    @Test func aRunnerThatIgnoresSIGINTIsKilledAfterTheBound() async throws {
        let token = "AGIVENREGISTRATIONTOKEN0006"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 0 ignore-int"])
        defer { h.finish() }
        var timing = ServiceTiming.fast
        timing.stopGrace = .seconds(1)
        let supervisor = h.supervisor(try h.settings(["RUNNER_REGISTRATION_TOKEN": token]), timing: timing)
        async let exit = supervisor.run()
        try await waitForRun(h.package)
        let start = ContinuousClock.now
        supervisor.requestStop()
        #expect(try await exit == .stopped)
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .seconds(1) && elapsed < .seconds(6))
        #expect(h.package.signals.contains("SIGINT (ignored)"))
        #expect(h.logs.all.contains { $0.contains("killing") })
    }

    @Test func aRunningJobMayFinishBeforeTheRunnerIsStopped() async throws {
        let token = "AGIVENREGISTRATIONTOKEN0007"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 5 hold"])
        defer { h.finish() }
        let supervisor = h.supervisor(try h.settings(["RUNNER_REGISTRATION_TOKEN": token]))
        async let exit = supervisor.run()
        try await waitForRun(h.package)
        // The supervisor learns of the job from the runner's output: wait until it has read it.
        // (The job lasts 5 s so that a stalled, loaded machine still asks while it runs.)
        for _ in 0..<1000 where !h.output.all.contains(where: { $0.contains("Running job") }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        supervisor.requestStop()
        #expect(try await exit == .stopped)
        let lines = h.output.all
        let completed = try #require(lines.firstIndex { $0.contains("completed with result") })
        let exiting = try #require(lines.firstIndex { $0.contains("Exiting...") })
        #expect(completed < exiting)
        #expect(h.logs.all.contains { $0.contains("letting the running job finish") })
    }
}
