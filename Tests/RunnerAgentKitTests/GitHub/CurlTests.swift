import RunnerCore
import Testing

@testable import RunnerAgentKit

@Suite struct CurlTests {
    @Test func requestKeepsSecretsOffArgv() {
        let curl = Curl()
        let request = Curl.Request(
            method: "POST", url: "https://api.github.com/orgs/acme/actions/runners/registration-token",
            headers: [("Authorization", Secret("Bearer ghp_SECRET\"x"))], body: #"{"a":"b\n"}"#,
            connectTimeoutSeconds: 7, maxTimeSeconds: 21)
        let command = curl.request(request)
        #expect(
            command.argv == [
                "curl", "--silent", "--show-error", "--proto", "=https,http", "--connect-timeout", "7", "--max-time",
                "21", "--write-out", "\\n%{http_code}", "--config", "-", "--url",
                "https://api.github.com/orgs/acme/actions/runners/registration-token",
            ])
        #expect(!command.description.contains("ghp_SECRET"))
        let config = String(decoding: curl.requestConfig(request), as: UTF8.self)
        #expect(
            config == """
                request = "POST"
                header = "Authorization: Bearer ghp_SECRET\\"x"
                data-binary = "{\\"a\\":\\"b\\\\n\\"}"

                """)
    }

    @Test func downloadIsBoundedAndFailsOnHTTPErrors() {
        let command = Curl().download(.init(url: "https://example.com/r.tar.gz", output: "/tmp/r.tar.gz"))
        #expect(
            command.argv == [
                "curl", "--fail", "--location", "--silent", "--show-error", "--proto", "=https,http", "--proto-redir",
                "=https,http", "--connect-timeout", "15", "--max-time", "900", "--retry", "3", "--output",
                "/tmp/r.tar.gz", "--url", "https://example.com/r.tar.gz",
            ])
    }

    @Test func secretsNeverPrint() {
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
    }
}
