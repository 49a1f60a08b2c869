import Crypto
import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing
import _CryptoExtras

@testable import RunnerAgentKit
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// One supervised run against the fake GitHub API and the fake runner package.
struct ServiceHarness {
    let directory: TemporaryDirectory
    let layout: HostLayout
    let github: FakeGitHub
    let package: FakeRunnerPackage
    let logs = LogCapture()
    let output = LogCapture()

    init(
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

    func settings(_ values: [String: String]) throws -> ServiceSettings {
        var all = [
            "RUNNER_GITHUB_URL": github.baseURL + "/acme/widgets", "RUNNER_NAME": "appliance-1",
            "RUNNER_USER": currentUserName, "RUNNER_LABELS": "nspawn,linux",
        ]
        for (key, value) in values { all[key] = value }
        return try ServiceSettings(values: all, layout: layout)
    }

    func supervisor(_ settings: ServiceSettings, timing: ServiceTiming = .fast) -> RunnerSupervisor {
        RunnerSupervisor(
            settings: settings, layout: layout, commandRunner: SystemCommandRunner(), logger: logs.logger(),
            timing: timing, output: { [output] in output.append($0) })
    }

    /// Runs the supervisor to its end while watching every process's argv for `secrets`.
    func run(_ supervisor: RunnerSupervisor, secrets: [String]) async throws -> ServiceExit {
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
    func handOver(to user: String) throws -> passwd {
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

    func finish() {
        github.stop()
        directory.remove()
    }
}

extension ServiceTiming {
    static var fast: ServiceTiming {
        var timing = ServiceTiming()
        timing.relaunchDelay = .milliseconds(100)
        timing.jobGrace = .seconds(10)
        timing.stopGrace = .seconds(2)
        return timing
    }
}

@Suite(.requires("python3"), .requires("curl"))
struct ServiceRegistrationTests {
    @Test func givenRegistrationTokenConfiguresUnattendedWithTheTokenInTheEnvironment() async throws {
        let token = "AGIVENREGISTRATIONTOKEN0001"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 0 run"])
        defer { h.finish() }
        let supervisor = h.supervisor(try h.settings(["RUNNER_REGISTRATION_TOKEN": token]))
        let exit = try await h.run(supervisor, secrets: [token])
        #expect(exit == .stopped)
        let configure = try #require(h.package.calls.first)
        #expect(configure.hasPrefix("config.sh --unattended --url \(h.github.baseURL)/acme/widgets --name appliance-1"))
        #expect(configure.contains("--disableupdate"))
        #expect(configure.contains("--labels nspawn,linux"))
        #expect(h.package.calls.last == "run.sh")
        let configEnv = try #require(h.package.environments("config").first)
        #expect(configEnv["ACTIONS_RUNNER_INPUT_TOKEN"] == token)
        let runEnv = try #require(h.package.environments("run").first)
        #expect(runEnv["ACTIONS_RUNNER_INPUT_TOKEN"] == nil)
        #expect(runEnv["ACTIONS_RUNNER_CONTAINER_HOOKS"] == h.layout.containerHooksScript)
        #expect(runEnv["ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"] == nil)
        #expect(runEnv["ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE"] == "1")
    }

    @Test func patMintsARegistrationTokenAndJobContainersCanBeRequired() async throws {
        let pat = "ghp_fakepersonalaccesstoken0001"
        let h = try await ServiceHarness(pats: [pat], script: ["0 0 run"])
        defer { h.finish() }
        let patFile = "/etc/runner/pat"
        try AtomicFile.write(pat + "\n", to: h.layout.path(patFile), mode: 0o600)
        let supervisor = h.supervisor(
            try h.settings(["RUNNER_PAT_FILE": patFile, "RUNNER_REQUIRE_JOB_CONTAINER": "true"]))
        let exit = try await h.run(supervisor, secrets: [pat, "AFAKEREGTOKEN"])
        #expect(exit == .stopped)
        let stats = try await h.github.stats()
        #expect(stats["registration-token"] == 1)
        #expect(stats["register"] == 1)
        let runEnv = try #require(h.package.environments("run").first)
        #expect(runEnv["ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"] == "true")
        #expect(runEnv.values.allSatisfy { !$0.contains(pat) })
    }

    @Test func githubAppSignsAJWTThatTheServerVerifies() async throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let primitives = try key.publicKey.getKeyPrimitives()
        let app = FakeGitHub.AppKey(
            appID: "31337", installationID: 77, privateKeyPEM: key.pemRepresentation,
            modulusHex: hex(primitives.modulus), exponentHex: hex(primitives.publicExponent))
        let h = try await ServiceHarness(app: app, script: ["0 0 run"])
        defer { h.finish() }
        let keyFile = "/etc/runner/app.pem"
        try AtomicFile.write(app.privateKeyPEM, to: h.layout.path(keyFile), mode: 0o600)
        let supervisor = h.supervisor(
            try h.settings(["RUNNER_APP_ID": "31337", "RUNNER_APP_PRIVATE_KEY_FILE": keyFile]))
        let exit = try await h.run(supervisor, secrets: ["ghs_fakeinstallation", "AFAKEREGTOKEN", "BEGIN RSA"])
        #expect(exit == .stopped)
        let stats = try await h.github.stats()
        #expect(stats["installation"] == 1)
        #expect(stats["access_tokens"] == 1)
        #expect(stats["registration-token"] == 1)
    }

    @Test func githubAppWithTheWrongKeyIsAConfigurationError() async throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let other = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let primitives = try key.publicKey.getKeyPrimitives()
        let app = FakeGitHub.AppKey(
            appID: "31337", installationID: 77, privateKeyPEM: other.pemRepresentation,
            modulusHex: hex(primitives.modulus), exponentHex: hex(primitives.publicExponent))
        let h = try await ServiceHarness(app: app)
        defer { h.finish() }
        let keyFile = "/etc/runner/app.pem"
        try AtomicFile.write(app.privateKeyPEM, to: h.layout.path(keyFile), mode: 0o600)
        let supervisor = h.supervisor(
            try h.settings([
                "RUNNER_APP_ID": "31337", "RUNNER_APP_INSTALLATION_ID": "77", "RUNNER_APP_PRIVATE_KEY_FILE": keyFile,
            ]))
        let error = await #expect(throws: RunnerError.self) { _ = try await supervisor.run() }
        #expect(error?.code == .invalidConfig)
        #expect(error?.problem.contains("HTTP 401") == true)
        #expect(error.map { ServiceExit($0) } == .config)
        #expect(try await h.github.stats()["access_tokens"] == 1)
        #expect(h.package.calls.isEmpty)
    }

    @Test func givenJITConfigRunsOneJobThenStops() async throws {
        let files = #"{".runner": "\#(base64(#"{"agentName": "jit-1", "ephemeral": true}"#))", ".credentials": "e30="}"#
        let jit = base64(files)
        let h = try await ServiceHarness(script: ["0 0 run"])
        defer { h.finish() }
        let supervisor = h.supervisor(try h.settings(["RUNNER_JIT_CONFIG": jit]))
        let exit = try await h.run(supervisor, secrets: [jit])
        #expect(exit == .stopped, "runner output: \(h.output.all), log: \(h.logs.all)")
        #expect(h.package.calls == ["run.sh"])
        let runEnv = try #require(h.package.environments("run").first)
        #expect(runEnv["ACTIONS_RUNNER_INPUT_JITCONFIG"] == jit)
        #expect(try await h.github.stats()["register-jit"] == 1)
    }

    @Test func ephemeralWithAPATGeneratesAFreshJITConfigPerJob() async throws {
        let pat = "ghp_fakepersonalaccesstoken0002"
        let h = try await ServiceHarness(pats: [pat], script: ["0 0 run", "0 0 run", "1 0 run"])
        defer { h.finish() }
        let supervisor = h.supervisor(
            try h.settings([
                "RUNNER_GITHUB_URL": h.github.baseURL + "/acme", "RUNNER_PAT": pat, "RUNNER_EPHEMERAL": "true",
                "RUNNER_GROUP": "appliances",
            ]))
        let exit = try await h.run(supervisor, secrets: [pat])
        #expect(exit == .runnerTerminated)
        let stats = try await h.github.stats()
        #expect(stats["generate-jitconfig"] == 3)
        #expect(stats["runner-groups"] == 3)
        #expect(h.package.calls == ["run.sh", "run.sh", "run.sh"])
        let jits = Set(h.package.environments("run").compactMap { $0["ACTIONS_RUNNER_INPUT_JITCONFIG"] })
        #expect(jits.count == 3)
    }

    @Test func ephemeralFallsBackToConfigWhenGitHubHasNoJIT() async throws {
        let pat = "ghp_fakepersonalaccesstoken0004"
        let h = try await ServiceHarness(pats: [pat], script: ["0 0 run", "1 0 run"], jitUnsupported: true)
        defer { h.finish() }
        let supervisor = h.supervisor(try h.settings(["RUNNER_PAT": pat, "RUNNER_EPHEMERAL": "true"]))
        let exit = try await h.run(supervisor, secrets: [pat, "AFAKEREGTOKEN"])
        #expect(exit == .runnerTerminated)
        let stats = try await h.github.stats()
        #expect(stats["generate-jitconfig"] == 1)
        #expect(stats["registration-token"] == 2)
        let configures = h.package.calls.filter { $0.hasPrefix("config.sh --unattended") }
        #expect(configures.count == 2 && configures.allSatisfy { $0.contains("--ephemeral") })
    }

    @Test func ephemeralWithARegistrationTokenRegistersAfreshPerJob() async throws {
        let token = "AGIVENREGISTRATIONTOKEN0002"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 0 run", "0 0 run", "5 0 run"])
        defer { h.finish() }
        let supervisor = h.supervisor(try h.settings(["RUNNER_REGISTRATION_TOKEN": token, "RUNNER_EPHEMERAL": "true"]))
        let exit = try await h.run(supervisor, secrets: [token])
        #expect(exit == .sessionConflict)
        let configures = h.package.calls.filter { $0.hasPrefix("config.sh --unattended") }
        #expect(configures.count == 3)
        #expect(configures.allSatisfy { $0.contains("--ephemeral") })
        #expect(supervisor.registrationsMade == 3)
    }

    @Test func anAlreadyConfiguredRunnerIsNotConfiguredAgain() async throws {
        let token = "AGIVENREGISTRATIONTOKEN0003"
        let h = try await ServiceHarness(registrationTokens: [token], script: ["0 0 run", "0 0 run"])
        defer { h.finish() }
        let settings = try h.settings(["RUNNER_REGISTRATION_TOKEN": token])
        #expect(try await h.supervisor(settings).run() == .stopped)
        #expect(try await h.supervisor(settings).run() == .stopped)
        #expect(h.package.calls.filter { $0.hasPrefix("config.sh") }.count == 1)
        #expect(h.package.calls.filter { $0 == "run.sh" }.count == 2)
        #expect(h.logs.all.contains { $0.contains("already configured") })
    }

    @Test func aRegistrationDeletedOnGitHubIsRemovedLocallyAndRegisteredAgain() async throws {
        let pat = "ghp_fakepersonalaccesstoken0003"
        let h = try await ServiceHarness(pats: [pat], script: ["0 0 run", "0 0 run"])
        defer { h.finish() }
        let settings = try h.settings(["RUNNER_PAT": pat])
        #expect(try await h.supervisor(settings).run() == .stopped)
        try await h.github.deleteRegistrations()
        let exit = try await h.run(h.supervisor(settings), secrets: [pat])
        #expect(exit == .stopped)
        let calls = h.package.calls
        #expect(calls.count == 6)
        #expect(calls.contains("config.sh remove --local"))
        #expect(calls.filter { $0.hasPrefix("config.sh --unattended") }.count == 2)
        #expect(h.output.all.contains { $0.contains("registration has been deleted") })
        #expect(try await h.github.stats()["registration-token"] == 2)
    }
}

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

/// (Serialized: two tests run the real agent with the runner user news, and the agent kills every
/// process of its runner user before registering.)
@Suite(.serialized, .requires("python3"), .requires("curl"))
struct ServiceStopTests {
    /// Waits until the fake run.sh holds (or has started its job): `.fake/ready` has `count` lines.
    func waitForRun(_ package: FakeRunnerPackage, count: Int = 1) async throws {
        for _ in 0..<1000 {
            let ready = (try? FilePaths.read(package.fake + "/ready")) ?? []
            if ready.filter({ $0 == 10 }).count >= count { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("run.sh never became ready")
    }

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

    /// The real binary: SIGTERM to `runner-agent service` stops it within the bound, exit 0.
    /// (As root: the config model refuses RUNNER_USER=root, so the runner runs as news.)
    @Test(.requiresRoot, .requires("setpriv"), .enabled(if: getpwnam("news") != nil, "needs the user news"))
    func sigtermToTheAgentStopsTheServiceWithinTheBound() async throws {
        let binary = Fixtures.repositoryRoot + "/.build/debug/runner-agent"
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
}

extension ServiceStopTests {
    /// `systemctl stop runner.service` while a job runs, delivered as the shipped unit's
    /// `KillMode=` has systemd deliver it (control-group: SIGTERM to every process of the unit;
    /// mixed/process: to the main process, the agent): the runner gets no SIGTERM from anyone,
    /// SIGINT only after the agent's job grace, and the agent exits 0.
    @Test(.requiresRoot, .requires("setpriv"), .enabled(if: getpwnam("news") != nil, "needs the user news"))
    func systemdStopWithAJobRunningLeavesTheRunnerToTheAgent() async throws {
        let binary = Fixtures.repositoryRoot + "/.build/debug/runner-agent"
        try #require(access(binary, X_OK) == 0, "build runner-agent first (swift build)")
        let killMode = try #require(try ServiceUnitFileTests().unit()["[Service]KillMode"]?.first)
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

func hex(_ data: some Sequence<UInt8>) -> String {
    data.map { byte in
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }.joined()
}

func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

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
