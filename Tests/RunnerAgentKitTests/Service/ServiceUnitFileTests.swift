import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The shipped `images/host/runner.service` and `runner-service.sh`.
struct ServiceUnitFileTests {
    var unitPath: String { ShippedServiceUnit.path }

    func unit() throws -> [String: [String]] { try ShippedServiceUnit.keys() }

    @Test func stopAndRestartPolicyMatchTheSupervisor() throws {
        let keys = try unit()
        // systemd's SIGTERM goes to the agent alone (it paces the runner's stop); its final
        // SIGKILL to the whole cgroup.
        #expect(keys["[Service]KillMode"] == ["mixed"])
        #expect(keys["[Service]Type"] == ["exec"])
        #expect(keys["[Service]Restart"] == ["on-failure"])
        #expect(keys["[Unit]StartLimitIntervalSec"] == ["0"])
        #expect(keys["[Service]ExecStart"] == ["/usr/local/lib/runner/runner-service.sh"])
        #expect(keys["[Service]EnvironmentFile"] == nil, "secrets must not reach the unit's environment")
        // Every terminal exit of the supervisor is exempt from restarts; retryable ones are not.
        let prevented = Set((keys["[Service]RestartPreventExitStatus"] ?? []).flatMap { $0.split(separator: " ") })
        let terminal: [ServiceExit] = [.runnerTerminated, .sessionConflict, .versionDeprecated, .config]
        #expect(prevented == Set(terminal.map { "\($0.rawValue)" }))
        #expect(!prevented.contains("\(ServiceExit.unavailable.rawValue)"))
        // systemd's stop bound covers the agent's job grace plus its SIGINT grace.
        let bound = Int(try #require(keys["[Service]TimeoutStopSec"]?.first)) ?? 0
        let timing = ServiceTiming()
        #expect(Duration.seconds(bound) > timing.jobGrace + timing.stopGrace)
        #expect(bound <= 600)
    }

    /// The agent is the unit's main process (what KillMode=mixed sends SIGTERM to): the script execs it.
    @Test func theServiceScriptExecsTheAgent() throws {
        let script = String(
            decoding: try FilePaths.read(Repo.root + "/images/host/runner-service.sh"), as: UTF8.self)
        #expect(script.hasSuffix("\nexec /usr/local/lib/runner/current/bin/runner-agent service \"$@\"\n"))
    }

    /// No job runs before the start or after the stop: every guest goes, stale or not.
    @Test func startAndStopSweepEveryGuest() throws {
        let keys = try unit()
        #expect(keys["[Service]ExecStartPre"] == ["-" + HostLayout().guestHelper + " gc --all"])
        #expect(keys["[Service]ExecStopPost"] == ["-" + HostLayout().guestHelper + " gc --all"])
    }

    @Test(.requires("systemd-analyze"))
    func unitIsCleanUnderSystemdAnalyzeVerify() async throws {
        try await withTemporaryDirectory("unit") { dir in
            // verify checks that ExecStart exists: point it at a copy of the script.
            let script = dir.appending("runner-service.sh")
            try AtomicFile.write(
                try FilePaths.read(Repo.root + "/images/host/runner-service.sh"), to: script, mode: 0o755)
            let text = String(decoding: try FilePaths.read(unitPath), as: UTF8.self)
                .replacing("/usr/local/lib/runner/runner-service.sh", with: script)
                .replacing(HostLayout().guestHelper, with: script)
            let unit = dir.appending("runner.service")
            try AtomicFile.write(text, to: unit)
            let command = Command("systemd-analyze", ["verify", "--man=no", unit])
            let result = try await SystemCommandRunner().run(command)
            #expect(result.status.isSuccess, "\(result.standardError)")
            #expect(!result.standardError.contains("runner.service"), "\(result.standardError)")
        }
    }
}
