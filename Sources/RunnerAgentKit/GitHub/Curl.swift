import RunnerCore

/// `curl`, the HTTP client of the agent (a host prerequisite), as typed commands.
///
/// Secrets never go on argv: headers and request bodies travel in a curl config read from
/// stdin (`--config -`), built by ``requestConfig(_:)``.
public struct Curl: Sendable {
    /// The program, `curl` from `PATH` unless told otherwise.
    public var executable: String

    public init(executable: String = "curl") { self.executable = executable }

    /// One API request: method, URL, headers (may hold secrets), body, time bounds.
    public struct Request: Sendable {
        public var method: String
        public var url: String
        public var headers: [(String, Secret)]
        public var body: String?
        public var connectTimeoutSeconds: Int
        public var maxTimeSeconds: Int

        public init(
            method: String, url: String, headers: [(String, Secret)] = [], body: String? = nil,
            connectTimeoutSeconds: Int = 10, maxTimeSeconds: Int = 30
        ) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
            self.connectTimeoutSeconds = connectTimeoutSeconds
            self.maxTimeSeconds = maxTimeSeconds
        }
    }

    /// The command for an API request. Its stdout is the response body followed by a last line
    /// holding the HTTP status; the secret part of the request is ``requestConfig(_:)`` on stdin.
    public func request(_ request: Request) -> Command {
        Command(
            executable,
            [
                "--silent", "--show-error", "--proto", "=https,http", "--connect-timeout",
                "\(request.connectTimeoutSeconds)", "--max-time", "\(request.maxTimeSeconds)", "--write-out",
                "\\n%{http_code}", "--config", "-", "--url", request.url,
            ])
    }

    /// The curl config (stdin of ``request(_:)``): method, headers and body, quoted for curl's
    /// config syntax.
    public func requestConfig(_ request: Request) -> [UInt8] {
        var lines = ["request = \(Curl.quoted(request.method))"]
        for (name, value) in request.headers {
            lines.append("header = \(Curl.quoted("\(name): \(value.value)"))")
        }
        if let body = request.body {
            lines.append("data-binary = \(Curl.quoted(body))")
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// Options of a file download.
    public struct DownloadOptions: Sendable, Hashable {
        public var url: String
        public var output: String
        public var connectTimeoutSeconds = 15
        public var maxTimeSeconds = 900
        public var retries = 3

        public init(url: String, output: String) {
            self.url = url
            self.output = output
        }
    }

    /// Downloads `url` to `output`, failing on HTTP errors, following redirects (release
    /// assets redirect to a CDN), with bounded time and a few retries.
    public func download(_ options: DownloadOptions) -> Command {
        Command(
            executable,
            [
                "--fail", "--location", "--silent", "--show-error", "--proto", "=https,http", "--proto-redir",
                "=https,http", "--connect-timeout", "\(options.connectTimeoutSeconds)", "--max-time",
                "\(options.maxTimeSeconds)", "--retry", "\(options.retries)", "--output", options.output, "--url",
                options.url,
            ])
    }

    /// A value in curl config syntax (``CurlConfigSyntax/quoted(_:)``).
    static func quoted(_ text: String) -> String { CurlConfigSyntax.quoted(text) }
}
