import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

/// The shipped `images/host/runner.service` and `runner-service.sh`.
struct ServiceUnitFileTests {
    var unitPath: String { Fixtures.repositoryRoot + "/images/host/runner.service" }

    func unit() throws -> [String: [String]] {
        let text = String(decoding: try FilePaths.read(unitPath), as: UTF8.self)
        var keys: [String: [String]] = [:]
        var section = ""
        for raw in text.split(separator: "\n") {
            let line = raw.trimmedWhitespace
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("[") {
                section = line
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            keys["\(section)\(line[..<eq])", default: []].append(String(line[line.index(after: eq)...]))
        }
        return keys
    }

    @Test func stopAndRestartPolicyMatchTheSupervisor() throws {
        let keys = try unit()
        #expect(keys["[Service]KillMode"] == ["control-group"])
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

    @Test(.requires("systemd-analyze"))
    func unitIsCleanUnderSystemdAnalyzeVerify() async throws {
        try await withTemporaryDirectory("unit") { dir in
            // verify checks that ExecStart exists: point it at a copy of the script.
            let script = dir.appending("runner-service.sh")
            try AtomicFile.write(
                try FilePaths.read(Fixtures.repositoryRoot + "/images/host/runner-service.sh"), to: script, mode: 0o755)
            let text = String(decoding: try FilePaths.read(unitPath), as: UTF8.self)
                .replacing("/usr/local/lib/runner/runner-service.sh", with: script)
            let unit = dir.appending("runner.service")
            try AtomicFile.write(text, to: unit)
            let command = Command("systemd-analyze", ["verify", "--man=no", unit])
            let result = try await SubprocessCommandRunner().run(command)
            #expect(result.status.isSuccess, "\(result.standardError)")
            #expect(!result.standardError.contains("runner.service"), "\(result.standardError)")
        }
    }
}
