import Crypto
import Logging
import RunnerCore
import RunnerTestSupport
import Testing
import _CryptoExtras

@testable import RunnerAgentKit

struct GitHubAPIErrorTests {
    func api(status: Int, body: String = #"{"message":"Bad credentials"}"#) throws -> (
        GitHubAPI, RecordingCommandRunner
    ) {
        let runner = RecordingCommandRunner()
        runner.answer("curl", with: CommandResult(status: .exited(0), standardOutput: body + "\n\(status)"))
        let api = GitHubAPI(
            target: try GitHubTarget(url: "https://github.com/acme/widgets"), runner: runner, logger: Logger(label: "t")
        )
        return (api, runner)
    }

    @Test(arguments: [
        (401, RunnerError.Code.invalidConfig), (403, .invalidConfig), (404, .invalidConfig), (422, .invalidConfig),
        (500, .network), (429, .network),
    ])
    func httpFailuresBecomeClearErrors(status: Int, code: RunnerError.Code) async throws {
        let (api, runner) = try api(status: status)
        let error = await #expect(throws: RunnerError.self) {
            _ = try await api.registrationToken(using: .pat(Secret("ghp_x")))
        }
        #expect(error?.code == code)
        #expect(error?.problem.contains("HTTP \(status)") == true)
        #expect(error?.fix != nil)
        let command = try #require(runner.commands.first)
        #expect(command.argv.last == "https://api.github.com/repos/acme/widgets/actions/runners/registration-token")
        #expect(!command.argv.joined().contains("ghp_x"))
    }

    @Test func transportFailuresAreNetworkErrors() async throws {
        let runner = RecordingCommandRunner()
        runner.answer("curl", with: CommandResult(status: .exited(28), standardError: "curl: (28) timed out\n"))
        let api = GitHubAPI(
            target: try GitHubTarget(url: "https://github.com/acme"), runner: runner, logger: Logger(label: "t"))
        let error = await #expect(throws: RunnerError.self) {
            _ = try await api.registrationToken(using: .pat(Secret("ghp_x")))
        }
        #expect(error?.code == .timeout)
        #expect(error.map { ServiceExit($0) } == .unavailable)
    }

    @Test func appsCannotRegisterEnterpriseRunners() async throws {
        let (api0, _) = try api(status: 201, body: #"{"token":"x"}"#)
        var api = api0
        api.target = try GitHubTarget(url: "https://github.com/enterprises/big")
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let error = await #expect(throws: RunnerError.self) {
            _ = try await api.registrationToken(
                using: .app(appID: "1", installationID: "2", privateKey: Secret(key.pemRepresentation), keyInput: "k"))
        }
        #expect(error?.fix?.contains("manage_runners:enterprise") == true)
    }
}
