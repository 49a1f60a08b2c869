import RunnerCore
import Testing

@testable import RunnerAgentKit

struct GitHubTargetTests {
    @Test(arguments: [
        ("https://github.com/acme/widgets", "https://api.github.com", "repos/acme/widgets"),
        ("https://github.com/acme/", "https://api.github.com", "orgs/acme"),
        ("https://github.com/enterprises/big", "https://api.github.com", "enterprises/big"),
        ("https://ghes.example.com/acme/widgets", "https://ghes.example.com/api/v3", "repos/acme/widgets"),
        ("https://ghes.example.com/enterprises/big", "https://ghes.example.com/api/v3", "enterprises/big"),
        ("https://tenant.ghe.com/acme", "https://api.tenant.ghe.com", "orgs/acme"),
        ("http://127.0.0.1:8080/acme", "http://127.0.0.1:8080/api/v3", "orgs/acme"),
    ])
    func parsesScopeAndAPIBase(url: String, api: String, path: String) throws {
        let target = try GitHubTarget(url: url)
        #expect(target.apiBase == api)
        #expect(target.runnersPath == path)
        #expect(!target.url.hasSuffix("/"))
    }

    @Test(arguments: [
        "github.com/acme", "ftp://github.com/acme", "https://github.com", "https://github.com/a/b/c",
        "http://github.com/acme", "https://github.com/../x", "https://user@github.com/acme", "https://github.com/a b",
    ])
    func rejectsBadURLs(url: String) {
        #expect(throws: RunnerError.self) { try GitHubTarget(url: url) }
    }
}
