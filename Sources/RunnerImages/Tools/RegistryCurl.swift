import RunnerCore

/// `curl` as the registry client's HTTP transport (a host prerequisite the agent already uses):
/// proxies (`HTTPS_PROXY`, `NO_PROXY`) and the system CA store come with it.
///
/// Every request writes the body to a file and prints, on stdout, the status code and the
/// response headers as JSON (`%{header_json}`, curl 7.83+). Headers, which may hold a password
/// or a token, travel in a curl config on stdin (`--config -`, ``config(headers:)``), never on argv.
public struct RegistryCurl: Sendable {
    /// The program, `curl` from `PATH` unless told otherwise.
    public var executable: String

    public init(executable: String = "curl") { self.executable = executable }

    /// One GET.
    public struct Request: Sendable, Hashable {
        public var url: String
        /// Where the body goes (a temporary file the caller owns).
        public var output: String
        /// Follow redirects (blob downloads redirect to object storage; curl drops our
        /// `Authorization` header when the host changes).
        public var followRedirects: Bool
        public var connectTimeoutSeconds: Int
        /// The whole transfer's bound.
        public var maxTimeSeconds: Int
        /// Abort a transfer slower than 1 KiB/s for this long (a stalled registry).
        public var stallSeconds: Int

        public init(
            url: String, output: String, followRedirects: Bool = true, connectTimeoutSeconds: Int = 15,
            maxTimeSeconds: Int = 3600, stallSeconds: Int = 60
        ) {
            self.url = url
            self.output = output
            self.followRedirects = followRedirects
            self.connectTimeoutSeconds = connectTimeoutSeconds
            self.maxTimeSeconds = maxTimeSeconds
            self.stallSeconds = stallSeconds
        }
    }

    /// The status and headers line format (`%{http_code}` then `%{header_json}`).
    public static let writeOut = "%{http_code}\\n%{header_json}"

    /// The command for `request`; its stdin is ``config(headers:)``.
    public func get(_ request: Request) -> Command {
        var arguments = [
            "--silent", "--show-error", "--proto", "=https,http", "--connect-timeout",
            "\(request.connectTimeoutSeconds)", "--max-time", "\(request.maxTimeSeconds)", "--speed-limit", "1024",
            "--speed-time", "\(request.stallSeconds)",
        ]
        if request.followRedirects {
            arguments += ["--location", "--proto-redir", "=https,http", "--max-redirs", "5"]
        }
        arguments += [
            "--output", request.output, "--write-out", Self.writeOut, "--config", "-", "--url", request.url,
        ]
        return Command(executable, arguments)
    }

    /// The curl config for stdin: one `header = "Name: value"` line per header.
    public func config(headers: [(String, Secret)]) -> [UInt8] {
        var text = ""
        for (name, value) in headers {
            text += "header = " + Self.quoted("\(name): \(value.value)") + "\n"
        }
        return Array(text.utf8)
    }

    /// A value in curl config syntax (``CurlConfigSyntax/quoted(_:)``).
    static func quoted(_ text: String) -> String { CurlConfigSyntax.quoted(text) }

    /// Exit codes that mean the connection, not the request, failed: worth another try.
    /// (6 could not resolve, 7 could not connect, 18 partial file, 28 timeout, 35 TLS
    /// handshake, 52 empty reply, 55 send error, 56 receive error, 92 HTTP/2 stream error.)
    public static let transientExitCodes: Set<Int32> = [6, 7, 18, 28, 35, 52, 55, 56, 92]
}
