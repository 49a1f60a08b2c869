import Foundation
import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The real `runner-agent service` binary stopped by a signal, as root with the runner user news.
/// (Serialized: both run the agent with the runner user news, and the agent kills every process of
/// its runner user before registering.)
@Suite(.serialized, .requires("python3"), .requires("curl"))
struct ServiceStopIntegrationTests {
    /// The real binary: SIGTERM to `runner-agent service` stops it within the bound, exit 0.
    /// (As root: the config model refuses RUNNER_USER=root, so the runner runs as news.)
    @Test(.requiresRoot, .requires("setpriv"), .enabled(if: getpwnam("news") != nil, "needs the user news"))
    func sigtermToTheAgentStopsTheServiceWithinTheBound() async throws {
        let binary = BuiltProducts.directory + "/runner-agent"
        try #require(access(binary, X_OK) == 0, "build runner-agent first (swift build)")
        let token = "AGIVENREGISTRATIONTOKEN0008"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 0 hold"])
        defer { h.finish() }
        // Its own user: the supervisor kills every process of its runner user before registering.
        _ = try h.handOver(to: "news")
        let config = h.layout.configFile
        try AtomicFile.write(
            """
            # test configuration
            RUNNER_GITHUB_URL=\(h.github.baseURL)/acme
            RUNNER_NAME="appliance-2"
            RUNNER_USER=news
            RUNNER_REGISTRATION_TOKEN='\(token)'

            """, to: config, mode: 0o600)
        let child = try TestProcess.start(
            Command(binary, ["service", "--root", h.directory.path, "--stop-grace", "2"]),
            environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"])
        try await waitForRun(h.package)
        let start = ContinuousClock.now
        kill(child.pid, SIGTERM)
        var status: RunnerCore.ExitStatus?
        while status == nil && ContinuousClock.now - start < .seconds(10) {
            status = child.poll()
            try await Task.sleep(for: .milliseconds(20))
        }
        let output = String(decoding: child.readAvailableOutput(), as: UTF8.self)
        #expect(status == .exited(0), "\(output)")
        #expect(ContinuousClock.now - start < .seconds(6), "stop grace is 2 s; slack for a loaded machine")
        #expect(h.package.signals.contains("SIGINT"))
        #expect(!output.contains(token))
        #expect(h.package.calls.first?.contains("--url \(h.github.baseURL)/acme --name appliance-2") == true)
    }

    /// `KillMode=` has systemd deliver it (control-group: SIGTERM to every process of the unit;
    /// mixed/process: to the main process, the agent): the runner gets no SIGTERM from anyone,
    /// SIGINT only after the agent's job grace, and the agent exits 0.
    @Test(.requiresRoot, .requires("setpriv"), .enabled(if: getpwnam("news") != nil, "needs the user news"))
    func systemdStopWithAJobRunningLeavesTheRunnerToTheAgent() async throws {
        let binary = BuiltProducts.directory + "/runner-agent"
        try #require(access(binary, X_OK) == 0, "build runner-agent first (swift build)")
        let killMode = try #require(try ShippedServiceUnit.keys()["[Service]KillMode"]?.first)
        let token = "AGIVENREGISTRATIONTOKEN0010"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 60 hold"])
        defer { h.finish() }
        _ = try h.handOver(to: "news")
        try AtomicFile.write(
            """
            RUNNER_GITHUB_URL=\(h.github.baseURL)/acme
            RUNNER_NAME=appliance-3
            RUNNER_USER=news
            RUNNER_REGISTRATION_TOKEN=\(token)

            """, to: h.layout.configFile, mode: 0o600)
        let grace = 3
        let agent = try TestProcess.start(
            Command(
                binary, ["service", "--root", h.directory.path, "--job-grace", "\(grace)", "--stop-grace", "10"]),
            environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"])
        var output = ""
        var status: RunnerCore.ExitStatus?
        defer { if status == nil { kill(agent.pid, SIGKILL) } }
        // The job runs once the agent has forwarded the runner's "Running job" line.
        for _ in 0..<1500 where !output.contains("Running job:") {
            output += String(decoding: agent.readAvailableOutput(), as: UTF8.self)
            try await Task.sleep(for: .milliseconds(10))
        }
        try #require(output.contains("Running job:"), "\(output)")
        let sentAt = Self.realtimeNanoseconds()
        let signalled = killMode == "control-group" ? [agent.pid] + Self.descendants(of: agent.pid) : [agent.pid]
        for pid in signalled { kill(pid, SIGTERM) }
        let start = ContinuousClock.now
        while status == nil && ContinuousClock.now - start < .seconds(20) {
            output += String(decoding: agent.readAvailableOutput(), as: UTF8.self)
            status = agent.poll()
            try await Task.sleep(for: .milliseconds(20))
        }
        output += String(decoding: agent.readAvailableOutput(), as: UTF8.self)
        #expect(status == .exited(0), "\(output)")
        #expect(!h.package.signals.contains("SIGTERM"), "the runner got SIGTERM (KillMode=\(killMode))")
        let interrupts = String(decoding: (try? FilePaths.read(h.package.fake + "/sigint-at")) ?? [], as: UTF8.self)
            .split(separator: "\n").compactMap { Int64($0) }
        let first = try #require(interrupts.first, "the runner never got SIGINT: \(output)")
        #expect(first - sentAt >= Int64(grace) * 1_000_000_000 - 50_000_000, "SIGINT before the job grace")
        #expect(output.contains("letting the running job finish"))
        #expect(output.contains("completed with result: Canceled"))
        #expect(output.contains("Exiting..."))
        #expect(!output.contains(token))
    }

    static func realtimeNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Every process below `pid` (what shares a unit's cgroup with its main process).
    static func descendants(of pid: pid_t) -> [pid_t] {
        var parents: [pid_t: [pid_t]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = pid_t(name), let bytes = try? FilePaths.read("/proc/\(name)/stat") else { continue }
            let text = String(decoding: bytes, as: UTF8.self)
            guard let close = text.lastIndex(of: ")") else { continue }
            let fields = text[text.index(after: close)...].split(separator: " ")
            guard fields.count > 1, let parent = pid_t(fields[1]) else { continue }
            parents[parent, default: []].append(child)
        }
        var found: [pid_t] = []
        var queue = [pid]
        while let next = queue.popLast() {
            let children = parents[next] ?? []
            found += children
            queue += children
        }
        return found
    }
}
