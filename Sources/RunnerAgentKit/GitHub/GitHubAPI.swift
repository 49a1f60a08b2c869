import FoundationEssentials
import Logging
import RunnerCore

/// How the agent authenticates to the GitHub API to mint registrations.
public enum GitHubCredential: Sendable {
    /// A classic or fine-grained personal access token.
    case pat(Secret)
    /// A GitHub App: its ID, the installation (looked up when nil) and its private key.
    case app(appID: String, installationID: String?, privateKey: Secret, keyInput: String)
}

/// The GitHub REST API calls a runner appliance needs: registration tokens, App installation
/// tokens, runner groups and JIT configurations. Requests go through `curl` (secrets on stdin,
/// never on argv), with bounded time; HTTP failures become ``RunnerError``s that say what to fix.
public struct GitHubAPI: Sendable {
    public var target: GitHubTarget
    public var runner: any CommandRunner
    public var curl: Curl
    public var logger: Logger
    /// Seconds for connecting and for a whole request.
    public var connectTimeoutSeconds = 10
    public var maxTimeSeconds = 30
    /// Proxy and other variables curl should see (`HTTPS_PROXY`, `NO_PROXY`, …).
    public var environment: [String: String?] = [:]

    public init(target: GitHubTarget, runner: any CommandRunner, curl: Curl = Curl(), logger: Logger) {
        self.target = target
        self.runner = runner
        self.curl = curl
        self.logger = logger
    }

    /// A registration token for `config.sh` (valid one hour), minted with `credential`.
    public func registrationToken(using credential: GitHubCredential) async throws(RunnerError) -> Secret {
        let auth = try await authorization(for: credential)
        let response: TokenResponse = try await call(
            "POST", "\(target.runnersPath)/actions/runners/registration-token", auth: auth, what: "a registration token"
        )
        logger.info("obtained a registration token", metadata: ["target": "\(target)"])
        return Secret(response.token)
    }

    /// Settings of a just-in-time runner.
    public struct JITRequest: Sendable, Encodable {
        public var name: String
        public var runnerGroupID: Int
        public var labels: [String]
        public var workFolder: String

        public init(name: String, runnerGroupID: Int, labels: [String], workFolder: String) {
            self.name = name
            self.runnerGroupID = runnerGroupID
            self.labels = labels
            self.workFolder = workFolder
        }

        enum CodingKeys: String, CodingKey {
            case name
            case runnerGroupID = "runner_group_id"
            case labels
            case workFolder = "work_folder"
        }
    }

    /// A JIT configuration (`generate-jitconfig`): a single-job runner registration.
    /// `group` nil is the default group (id 1); a name is looked up for organizations and
    /// enterprises.
    public func jitConfig(
        using credential: GitHubCredential, name: String, group: String?, labels: [String], workFolder: String
    ) async throws(RunnerError) -> Secret {
        let auth = try await authorization(for: credential)
        let groupID = try await runnerGroupID(named: group, auth: auth)
        let request = JITRequest(
            name: name, runnerGroupID: groupID, labels: labels.isEmpty ? ["self-hosted"] : labels,
            workFolder: workFolder)
        let body: String
        do {
            body = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
        } catch {
            throw RunnerError(
                .internal, input: "generate-jitconfig", problem: "could not encode the request", underlying: error)
        }
        let response: JITResponse = try await call(
            "POST", "\(target.runnersPath)/actions/runners/generate-jitconfig", auth: auth, body: body,
            what: "a JIT runner configuration")
        logger.info("obtained a JIT configuration", metadata: ["target": "\(target)", "runner": "\(name)"])
        return Secret(response.encodedJITConfig)
    }

    /// The id of the runner group `name` (1, the default group, when nil or for repositories).
    func runnerGroupID(named name: String?, auth: Secret) async throws(RunnerError) -> Int {
        guard let name, !name.isEmpty, name != "Default" else { return 1 }
        if case .repository = target.scope { return 1 }
        let groups: RunnerGroups = try await call(
            "GET", "\(target.runnersPath)/actions/runner-groups?per_page=100", auth: auth, what: "the runner groups")
        guard let group = groups.runnerGroups.first(where: { $0.name == name }) else {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_GROUP", problem: "no runner group named '\(name)' at \(target)",
                fix: "create the group in the \(target) settings or correct RUNNER_GROUP")
        }
        return group.id
    }

    /// The bearer token for `credential`: the PAT itself, or an App installation token.
    func authorization(for credential: GitHubCredential) async throws(RunnerError) -> Secret {
        switch credential {
        case .pat(let token):
            return token
        case .app(let appID, let installationID, let key, let keyInput):
            if case .enterprise = target.scope {
                throw RunnerError(
                    .invalidConfig, input: "RUNNER_APP_ID",
                    problem: "GitHub Apps cannot register enterprise-level runners",
                    fix: "use a PAT with the manage_runners:enterprise scope (RUNNER_PAT_FILE) for \(target)")
            }
            let jwt = try AppJWT(appID: appID, privateKeyPEM: key, keyInput: keyInput).token()
            let installation: String
            if let installationID, !installationID.isEmpty {
                guard installationID.allSatisfy(\.isNumber) else {
                    throw RunnerError(
                        .invalidConfig, input: "RUNNER_APP_INSTALLATION_ID",
                        problem: "'\(installationID)' is not a number",
                        fix: "set the numeric installation id or leave it empty")
                }
                installation = installationID
            } else {
                let path: String
                switch target.scope {
                case .repository(let owner, let name): path = "repos/\(owner)/\(name)/installation"
                case .organization(let org): path = "orgs/\(org)/installation"
                case .enterprise: path = ""
                }
                let found: Installation = try await call("GET", path, auth: jwt, what: "the App's installation")
                installation = String(found.id)
            }
            let token: TokenResponse = try await call(
                "POST", "app/installations/\(installation)/access_tokens", auth: jwt,
                what: "an App installation token")
            return Secret(token.token)
        }
    }

    /// One request: sends it, maps transport and HTTP failures to errors, decodes the JSON.
    func call<Response: Decodable>(
        _ method: String, _ path: String, auth: Secret, body: String? = nil, what: String
    ) async throws(RunnerError) -> Response {
        let url = target.apiBase + "/" + path
        let request = Curl.Request(
            method: method, url: url,
            headers: [
                ("Authorization", Secret("Bearer \(auth.value)")),
                ("Accept", Secret("application/vnd.github+json")),
                ("X-GitHub-Api-Version", Secret("2022-11-28")),
                ("Content-Type", Secret("application/json")),
                ("User-Agent", Secret("runner-agent/\(RunnerVersion.current)")),
            ], body: body, connectTimeoutSeconds: connectTimeoutSeconds, maxTimeSeconds: maxTimeSeconds)
        var command = curl.request(request)
        command.environment = environment
        let result = try await runner.run(command, input: curl.requestConfig(request), output: .captured)
        guard result.status.isSuccess else {
            let timedOut = result.status == .exited(28)
            throw RunnerError(
                timedOut ? .timeout : .network, input: "\(method) \(url)",
                problem: "could not get \(what): curl \(result.status): "
                    + result.standardError.trimmedWhitespace,
                fix:
                    "check the host's network, DNS and proxy settings (HTTPS_PROXY) and that \(target.host) is reachable"
            )
        }
        var text = result.standardOutput
        while text.hasSuffix("\n") { text.removeLast() }
        let statusLine: Substring
        let responseBody: Substring
        if let newline = text.lastIndex(of: "\n") {
            statusLine = text[text.index(after: newline)...]
            responseBody = text[..<newline]
        } else {
            statusLine = text[...]
            responseBody = ""
        }
        let status = Int(statusLine) ?? 0
        guard (200..<300).contains(status) else {
            throw httpError(status: status, body: String(responseBody), method: method, url: url, what: what)
        }
        do {
            return try JSONDecoder().decode(Response.self, from: Data(responseBody.utf8))
        } catch {
            throw RunnerError(
                .network, input: "\(method) \(url)", problem: "could not read the answer for \(what) (HTTP \(status))",
                fix: "check that \(target.apiBase) is a GitHub API", underlying: error)
        }
    }

    func httpError(status: Int, body: String, method: String, url: String, what: String) -> RunnerError {
        let message = (try? JSONDecoder().decode(APIError.self, from: Data(body.utf8)).message) ?? ""
        let said = message.isEmpty ? "" : ": \(message)"
        let input = "\(method) \(url)"
        switch status {
        case 401:
            return RunnerError(
                .invalidConfig, input: input, problem: "GitHub rejected the credential (HTTP 401\(said))",
                fix: "renew the PAT, or check RUNNER_APP_ID and the App's private key and the host clock")
        case 403:
            return RunnerError(
                .invalidConfig, input: input, problem: "the credential may not get \(what) (HTTP 403\(said))",
                fix: scopeFix)
        case 404:
            return RunnerError(
                .invalidConfig, input: input, problem: "not found (HTTP 404\(said))",
                fix: "check RUNNER_GITHUB_URL (\(target)) and that the credential can see it; " + scopeFix)
        case 422:
            return RunnerError(
                .invalidConfig, input: input, problem: "GitHub refused the request (HTTP 422\(said))",
                fix: "check RUNNER_NAME, RUNNER_LABELS and RUNNER_GROUP")
        case 429:
            return RunnerError(
                .network, input: input, problem: "rate limited (HTTP 429\(said))", fix: "wait; the service retries")
        default:
            return RunnerError(
                .network, input: input, problem: "could not get \(what) (HTTP \(status)\(said))",
                fix: "retry later; check \(target.host)'s status")
        }
    }

    var scopeFix: String {
        switch target.scope {
        case .repository:
            "a classic PAT needs the repo scope; a fine-grained PAT or App needs Administration: write on the repository"
        case .organization:
            "a classic PAT needs admin:org; a fine-grained PAT or App needs Self-hosted runners: write on the organization"
        case .enterprise:
            "a classic PAT needs manage_runners:enterprise (Apps cannot register enterprise runners)"
        }
    }
}

struct TokenResponse: Decodable {
    let token: String
}

struct Installation: Decodable {
    let id: Int
}

struct RunnerGroups: Decodable {
    struct Group: Decodable {
        let id: Int
        let name: String
    }
    let runnerGroups: [Group]
    enum CodingKeys: String, CodingKey { case runnerGroups = "runner_groups" }
}

struct JITResponse: Decodable {
    let encodedJITConfig: String
    enum CodingKeys: String, CodingKey { case encodedJITConfig = "encoded_jit_config" }
}

struct APIError: Decodable {
    let message: String
}
