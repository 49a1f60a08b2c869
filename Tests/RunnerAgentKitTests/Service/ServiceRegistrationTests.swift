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
        var settings = try h.settings([
            "RUNNER_APP_ID": "31337", "RUNNER_APP_INSTALLATION_ID": "77", "RUNNER_APP_PRIVATE_KEY_FILE": keyFile,
        ])
        // config.env always names the installation (the config model requires it); the API
        // client can also look it up, which this covers.
        guard case .api(.app(let appID, let installation, let privateKey, let keyInput)) = settings.registration,
            installation == "77"
        else {
            Issue.record("expected the App credential from config.env")
            return
        }
        settings.registration = .api(
            .app(appID: appID, installationID: nil, privateKey: privateKey, keyInput: keyInput))
        let supervisor = h.supervisor(settings)
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

func hex(_ data: some Sequence<UInt8>) -> String {
    data.map { byte in
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }.joined()
}

func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
