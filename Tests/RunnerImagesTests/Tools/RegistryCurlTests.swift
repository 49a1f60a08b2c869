import RunnerCore
import RunnerImages
import Testing

@Suite struct RegistryCurlTests {
    @Test func getArgv() {
        let command = RegistryCurl().get(
            RegistryCurl.Request(url: "https://ghcr.io/v2/a/b/manifests/1", output: "/tmp/body"))
        #expect(command.executable == "curl")
        #expect(
            command.arguments == [
                "--silent", "--show-error", "--proto", "=https,http", "--connect-timeout", "15", "--max-time", "3600",
                "--speed-limit", "1024", "--speed-time", "60", "--location", "--proto-redir", "=https,http",
                "--max-redirs", "5", "--output", "/tmp/body", "--write-out", "%{http_code}\\n%{header_json}",
                "--config", "-", "--url", "https://ghcr.io/v2/a/b/manifests/1",
            ])
        let noRedirects = RegistryCurl(executable: "/usr/bin/curl").get(
            RegistryCurl.Request(url: "http://127.0.0.1:1/v2/", output: "/o", followRedirects: false))
        #expect(noRedirects.executable == "/usr/bin/curl")
        #expect(!noRedirects.arguments.contains("--location"))
    }

    @Test func secretsTravelInTheConfigOnly() {
        let curl = RegistryCurl()
        let secret = Secret("Bearer s3cr3t\"x")
        let command = curl.get(RegistryCurl.Request(url: "https://r/v2/", output: "/o"))
        #expect(!command.arguments.joined(separator: " ").contains("s3cr3t"))
        let config = String(
            decoding: curl.config(headers: [("Authorization", secret), ("Accept", Secret("a, b"))]), as: UTF8.self)
        #expect(config == "header = \"Authorization: Bearer s3cr3t\\\"x\"\nheader = \"Accept: a, b\"\n")
    }
}
