import FoundationEssentials
import Logging
import RunnerAgentKit
import RunnerCore
import RunnerSystem
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// One supervised run against the fake GitHub API and the fake runner package.
public struct ServiceHarness {
    public let directory: TemporaryDirectory
    public let layout: HostLayout
    public let github: FakeGitHub
    public let package: FakeRunnerPackage
    public let logs = LogCapture()
    public let output = LogCapture()

    public init(
        pats: [String] = [], app: FakeGitHub.AppKey? = nil, registrationTokens: [String] = [], script: [String] = [],
        jitUnsupported: Bool = false
    ) async throws {
        directory = try TemporaryDirectory("service")
        layout = directory.layout
        github = try await FakeGitHub(
            directory: directory.path, pats: pats, app: app, registrationTokens: registrationTokens,
            jitUnsupported: jitUnsupported)
        package = try FakeRunnerPackage(layout: layout, apiURL: github.baseURL, script: script)
    }

    /// The settings of a config.env holding `values` (not validated: the tests run the runner
    /// as the current user, which may be root, and the config model refuses RUNNER_USER=root).
    public func settings(_ values: [String: String]) throws -> ServiceSettings {
        var all = [
            "RUNNER_GITHUB_URL": github.baseURL + "/acme/widgets", "RUNNER_NAME": "appliance-1",
            "RUNNER_USER": currentUserName, "RUNNER_LABELS": "nspawn,linux",
        ]
        for (key, value) in values { all[key] = value }
        return try ServiceSettings(RunnerConfig(source: layout.configFile, values: all), layout: layout)
    }

    public func supervisor(_ settings: ServiceSettings, timing: ServiceTiming = .fast) -> RunnerSupervisor {
        RunnerSupervisor(
            settings: settings, layout: layout, commandRunner: SystemCommandRunner(), logger: logs.logger(),
            timing: timing, output: { [output] in output.append($0) })
    }

    /// Runs the supervisor to its end while watching every process's argv for `secrets`.
    public func run(_ supervisor: RunnerSupervisor, secrets: [String]) async throws -> ServiceExit {
        let watcher = ArgvWatcher(secrets: secrets, scope: directory.path)
        let task = watcher.start()
        defer {
            watcher.stop()
        }
        let exit = try await supervisor.run()
        watcher.stop()
        await task.value
        #expect(watcher.leaks.isEmpty, "secret on a command line: \(watcher.leaks)")
        #expect(watcher.seen.contains("run.sh"), "the argv watcher never saw the runner running")
        if package.calls.contains(where: { $0.hasPrefix("config.sh --unattended") }) {
            #expect(watcher.seen.contains("config.sh"), "the argv watcher never saw config.sh running")
        }
        for secret in secrets {
            #expect(!logs.all.contains { $0.contains(secret) }, "secret in the logs")
            #expect(!output.all.contains { $0.contains(secret) }, "secret in the runner output")
        }
        return exit
    }

    /// Lets `user` run the fake runner package (for tests that drop privileges). The supervisor
    /// kills every process of its runner user before each registration: tests that run at the
    /// same time use distinct system users (news, uucp, irc, list), and none uses nobody.
    public func handOver(to user: String) throws -> passwd {
        let nobody = try #require(getpwnam(user)).pointee
        chmod(directory.path, 0o755)
        for path in [layout.path("/opt"), package.directory, package.fake] {
            chmod(path, 0o755)
            chown(path, nobody.pw_uid, nobody.pw_gid)
        }
        for name in ["calls", "script", "api", "sleep"] {
            chown(package.fake + "/" + name, nobody.pw_uid, nobody.pw_gid)
        }
        return nobody
    }

    public func finish() {
        github.stop()
        directory.remove()
    }
}

extension ServiceTiming {
    /// Short pauses and graces, for tests.
    public static var fast: ServiceTiming {
        var timing = ServiceTiming()
        timing.relaunchDelay = .milliseconds(100)
        timing.jobGrace = .seconds(10)
        timing.stopGrace = .seconds(2)
        return timing
    }
}

/// Waits until the fake run.sh holds (or has started its job): `.fake/ready` has `count` lines.
public func waitForRun(_ package: FakeRunnerPackage, count: Int = 1) async throws {
    for _ in 0..<1000 {
        let ready = (try? FilePaths.read(package.fake + "/ready")) ?? []
        if ready.filter({ $0 == 10 }).count >= count { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("run.sh never became ready")
}

/// The name of the user the tests run as.
public var currentUserName: String {
    guard let entry = getpwuid(geteuid()) else { return "root" }
    return String(cString: entry.pointee.pw_name)
}
