import Logging
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerImages

/// The client's request loop against a recording runner (no process, no packet): bounded
/// retries on transient failures, mirrors before the registry, credentials only where they belong.
@Suite struct RegistryClientTests {
    static func client(
        _ runner: RecordingCommandRunner, reference: String = "node:20", mirrors: [String: [String]] = [:],
        credentials: RegistryCredentials? = nil
    ) throws -> RegistryClient {
        RegistryClient(
            reference: try ImageReference(parsing: reference),
            settings: RegistrySettings(mirrors: mirrors, retryDelays: [0, 0]), credentials: credentials,
            authFile: nil, scratch: "/nonexistent", runner: runner, logger: Logger(label: "test"))
    }

    @Test func transientStatusesAreTriedAgainThenSucceed() async throws {
        let runner = RecordingCommandRunner()
        let calls = Mutex(0)
        runner.answer(
            when: { _ in
                calls.withLock {
                    $0 += 1; return $0 <= 2
                }
            },
            with: CommandResult(status: .exited(0), standardOutput: "503\n{}"))
        runner.answer(
            "curl", with: CommandResult(status: .exited(0), standardOutput: "200\n{\"Content-Type\":[\"x\"]}"))
        let response = try await Self.client(runner).perform(
            url: "https://registry-1.docker.io/v2/", headers: [], output: "/nonexistent/body")
        #expect(response.status == 200)
        #expect(response.header("content-type") == "x")
        #expect(runner.commands.count == 3)
    }

    @Test func connectionFailuresGiveUpAfterTheBoundedRetries() async throws {
        let runner = RecordingCommandRunner()
        runner.answer("curl", with: CommandResult(status: .exited(7), standardError: "Failed to connect"))
        let error = await #expect(throws: RunnerError.self) {
            try await Self.client(runner).perform(url: "https://registry-1.docker.io/v2/", headers: [], output: "/o")
        }
        #expect(error?.code == .network)
        #expect(error?.problem.contains("https://registry-1.docker.io") == true)
        #expect(runner.commands.count == 3)
    }

    @Test func mirrorsAreAskedFirstAndPassOnWhatTheyLack() async throws {
        let runner = RecordingCommandRunner()
        runner.answer(
            when: { $0.arguments.last?.hasPrefix("https://mirror.example") == true },
            with: CommandResult(status: .exited(0), standardOutput: "404\n{}"))
        runner.answer("curl", with: CommandResult(status: .exited(0), standardOutput: "200\n{}"))
        let client = try Self.client(runner, mirrors: ["docker.io": ["https://mirror.example"]])
        let response = try await client.get(
            "/v2/library/node/manifests/20", accept: OCIMediaType.manifestAccept, output: "/o", what: "manifest")
        #expect(response.status == 200)
        #expect(
            runner.commands.compactMap(\.arguments.last) == [
                "https://mirror.example/v2/library/node/manifests/20",
                "https://registry-1.docker.io/v2/library/node/manifests/20",
            ])
    }

    @Test func jobCredentialsGoOnlyToTheirRegistry() throws {
        let runner = RecordingCommandRunner()
        let job = RegistryCredentials(username: "u", password: Secret("p"))
        let client = try Self.client(runner, mirrors: ["docker.io": ["https://mirror.example"]], credentials: job)
        let endpoints = client.endpoints
        #expect(endpoints.map(\.isMirror) == [true, false])
        #expect(client.credentialsFor(endpoints[0]) == nil)
        #expect(client.credentialsFor(endpoints[1]) == job)
        let ghcr = RegistryCredentials(username: "u", password: Secret("p"), serverURL: "ghcr.io")
        #expect(try Self.client(runner, credentials: ghcr).credentialsFor(endpoints[1]) == nil)
        #expect(
            try Self.client(runner, reference: "127.0.0.1:5000/a").endpoints.last?.baseURL == "http://127.0.0.1:5000")
    }
}
