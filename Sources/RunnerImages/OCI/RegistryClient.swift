import FoundationEssentials
import Logging
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A client of the Docker Registry HTTP API v2 / OCI distribution API, over `curl`
/// (``RegistryCurl``), for one pull.
///
/// - Authentication follows the registry's challenge: anonymous first; on a 401 with
///   `WWW-Authenticate: Bearer realm,service,scope` a token is fetched from the realm (with the
///   credentials as basic auth when there are some) and the request is made again; on `Basic` the
///   credentials are sent as basic auth. Tokens are kept per host and repository for the pull.
///   Credentials go to a token realm only over https (or to a loopback realm).
/// - Transient failures (connection errors, 429, 5xx) are tried again after
///   ``RegistrySettings/retryDelays`` (a `Retry-After` of up to 30 s is honoured).
/// - Mirrors of the registry are tried first, in order; a mirror that fails for any reason
///   passes the request on to the next, then to the registry itself. The job's credentials go
///   only to the registry they are for, never to a mirror.
/// - Every byte is checked: ``fetchManifest(_:reference:)`` and ``fetchBlob(_:repository:into:reference:)``
///   verify the sha256 (and size) before anything is kept.
public struct RegistryClient: Sendable {
    public let reference: ImageReference
    public let settings: RegistrySettings
    let credentials: RegistryCredentials?
    let authFile: RegistryAuthFile?
    let runner: any CommandRunner
    let curl: RegistryCurl
    let logger: Logger
    let tokens = TokenCache()
    /// A root-only directory for response bodies (the store's blob directory).
    let scratch: String

    /// A client for pulls of `reference`. `credentials` (a job's) are used only for the
    /// registry they name; the auth file's entry for a host otherwise.
    public init(
        reference: ImageReference, settings: RegistrySettings, credentials: RegistryCredentials?,
        authFile: RegistryAuthFile?, scratch: String, runner: any CommandRunner, curl: RegistryCurl = RegistryCurl(),
        logger: Logger
    ) {
        self.scratch = scratch
        self.reference = reference
        self.settings = settings
        self.credentials = credentials
        self.authFile = authFile
        self.runner = runner
        self.curl = curl
        self.logger = logger
    }

    /// One place the registry API is served: a mirror or the registry itself.
    public struct Endpoint: Sendable, Hashable {
        /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`, `https://mirror.gcr.io`.
        public var baseURL: String
        /// The name credentials are looked up by (`docker.io`, the mirror's host).
        public var credentialName: String
        public var isMirror: Bool
    }

    /// The mirrors of the reference's registry, then the registry itself.
    public var endpoints: [Endpoint] {
        let mirrors = (settings.mirrors[reference.registry] ?? []).map { url in
            Endpoint(baseURL: url, credentialName: RegistryCredentials.registryName(url), isMirror: true)
        }
        let scheme = reference.isLoopback ? "http" : "https"
        return mirrors + [
            Endpoint(
                baseURL: scheme + "://" + reference.registryHost, credentialName: reference.registry, isMirror: false)
        ]
    }

    /// A response: status, headers (names lowercased) and the body's file.
    struct Response {
        var status: Int
        var headers: [String: [String]]
        func header(_ name: String) -> String? { headers[name]?.first }
    }

    // MARK: Manifests and blobs

    /// A fetched and verified manifest or index.
    public struct FetchedManifest: Sendable {
        public var bytes: [UInt8]
        public var mediaType: String
        /// `sha256:<hex>` of ``bytes``.
        public var digest: String
    }

    /// Fetches the manifest (or index) `manifestReference` (a tag or a digest) of the
    /// reference's repository. With a digest, the bytes must hash to it; with a tag, they must
    /// hash to the `Docker-Content-Digest` the registry sends, when it sends one.
    public func fetchManifest(_ manifestReference: String) async throws(RunnerError)
        -> FetchedManifest
    {
        let path = "/v2/\(reference.repository)/manifests/\(manifestReference)"
        let body = scratch + "/.manifest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(body) }
        let response = try await get(
            path, accept: OCIMediaType.manifestAccept, output: body, what: "manifest \(manifestReference)")
        guard response.status == 200 else {
            throw failure(response.status, what: "manifest '\(manifestReference)'")
        }
        let bytes = try FilePaths.read(body)
        guard bytes.count <= 4 << 20 else {
            throw RunnerError(
                .unsafeInput, input: reference.description, problem: "the registry sent a manifest over 4 MiB",
                fix: "check the image at its registry")
        }
        let digest = "sha256:" + SHA256Digest.hex(of: bytes)
        let expected =
            ImageReference.isDigest(manifestReference) ? manifestReference : response.header("docker-content-digest")
        if let expected, expected.hasPrefix("sha256:"), expected != digest {
            throw RunnerError(
                .integrity, input: reference.description,
                problem: "the manifest's digest is \(digest), not \(expected) as expected; nothing was kept",
                fix: "pull again; if it persists, the registry or a proxy alters content")
        }
        var mediaType = response.header("content-type")?.split(separator: ";").first.map {
            $0.trimmedWhitespace
        }
        if mediaType == nil || !(OCIMediaType.isIndex(mediaType ?? "") || OCIMediaType.isManifest(mediaType ?? "")) {
            // Some registries send application/json: the document's own mediaType decides.
            struct Probe: Decodable {
                var mediaType: String?
                var manifests: [OCIDescriptor]?
            }
            let probe = try? JSONDecoder().decode(Probe.self, from: Data(bytes))
            mediaType = probe?.mediaType ?? (probe?.manifests != nil ? OCIMediaType.ociIndex : OCIMediaType.ociManifest)
        }
        return FetchedManifest(bytes: bytes, mediaType: mediaType ?? OCIMediaType.ociManifest, digest: digest)
    }

    /// Downloads blob `descriptor` into `temporary` (a file beside its final place), checking
    /// its size and sha256. On a mismatch the file is deleted and the error names the
    /// reference and both digests.
    public func fetchBlob(_ descriptor: OCIDescriptor, into temporary: String) async throws(RunnerError) {
        guard descriptor.sha256Hex != nil else {
            throw RunnerError(
                .unsupported, input: reference.description,
                problem: "blob \(descriptor.digest) is not addressed by sha256",
                fix: "use an image whose manifest names sha256 digests")
        }
        var done = false
        defer { if !done { unlink(temporary) } }
        let response = try await get(
            "/v2/\(reference.repository)/blobs/\(descriptor.digest)", accept: ["*/*"], output: temporary,
            what: "blob \(descriptor.digest)")
        guard response.status == 200 else {
            throw failure(response.status, what: "blob \(descriptor.digest)")
        }
        let checked = try await DedicatedThread.run { () throws(RunnerError) -> (String, Int64) in
            try Self.hashFile(temporary)
        }
        guard checked.0 == descriptor.digest, checked.1 == descriptor.size else {
            throw RunnerError(
                .integrity, input: reference.description,
                problem: "blob \(descriptor.digest) arrived as \(checked.0) (\(checked.1) bytes, the manifest says "
                    + "\(descriptor.size)); it was deleted",
                fix: "pull again; if it persists, the registry or a proxy alters content")
        }
        done = true
    }

    /// `sha256:<hex>` and the size of a file.
    static func hashFile(_ path: String) throws(RunnerError) -> (String, Int64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RunnerError.posix("could not open", path, fix: nil) }
        defer { close(fd) }
        var stream = SHA256Stream()
        var size: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw RunnerError.posix("could not read", path, fix: nil)
            }
            if n == 0 { break }
            size += Int64(n)
            buffer.withUnsafeBytes { stream.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return ("sha256:" + stream.finalizeHex(), size)
    }

    /// The error for an unexpected status.
    func failure(_ status: Int, what: String) -> RunnerError {
        switch status {
        case 401, 403:
            let how =
                credentialsFor(
                    Endpoint(
                        baseURL: "", credentialName: reference.registry, isMirror: false)) == nil
                ? "it needs credentials (none were given, and the host's auth file has none for it)"
                : "it refused the credentials"
            return RunnerError(
                .permission, input: reference.description,
                problem: "\(reference.registry) answered HTTP \(status) for the \(what): \(how)",
                fix: "check the job's `credentials:` (username and a password or token with pull access) "
                    + "or RUNNER_REGISTRY_AUTH_FILE")
        case 404:
            return RunnerError(
                .notFound, input: reference.description,
                problem: "\(reference.registry) has no \(what) in \(reference.repository) (HTTP 404)",
                fix: "check the image name and tag")
        default:
            return RunnerError(
                .network, input: reference.description,
                problem: "\(reference.registry) answered HTTP \(status) for the \(what)",
                fix: "try again later; check the registry's status")
        }
    }

    // MARK: Requests

    /// GETs `path` from the first endpoint that answers (mirrors first), authenticating as
    /// the registry asks. Returns the last endpoint's response when every one fails with a status.
    func get(_ path: String, accept: [String], output: String, what: String) async throws(RunnerError) -> Response {
        var lastError: RunnerError?
        var lastResponse: Response?
        let endpoints = endpoints
        for (index, endpoint) in endpoints.enumerated() {
            let isLast = index == endpoints.count - 1
            do {
                let response = try await get(path, accept: accept, output: output, endpoint: endpoint)
                if response.status == 200 || isLast { return response }
                logger.info(
                    "mirror answered \(response.status); trying the next",
                    metadata: ["mirror": "\(endpoint.baseURL)", "what": "\(what)"])
                lastResponse = response
            } catch {
                if isLast { throw error }
                logger.info(
                    "mirror failed; trying the next",
                    metadata: ["mirror": "\(endpoint.baseURL)", "error": "\(error.problem)"])
                lastError = error
            }
        }
        if let lastResponse { return lastResponse }
        throw lastError
            ?? RunnerError(.internal, input: reference.description, problem: "no endpoint to ask", fix: nil)
    }

    /// GETs `path` from one endpoint: retries, and one round of authentication.
    func get(_ path: String, accept: [String], output: String, endpoint: Endpoint) async throws(RunnerError)
        -> Response
    {
        let scopeKey = endpoint.baseURL + " " + reference.repository
        var authorization = await tokens.value(for: scopeKey)
        var authenticated = false
        while true {
            var headers: [(String, Secret)] = [("Accept", Secret(accept.joined(separator: ", ")))]
            if let authorization { headers.append(("Authorization", authorization)) }
            let response = try await perform(url: endpoint.baseURL + path, headers: headers, output: output)
            guard response.status == 401, !authenticated else { return response }
            authenticated = true
            guard let header = response.header("www-authenticate"), let challenge = AuthChallenge(header: header)
            else { return response }
            guard let answer = try await answer(challenge, endpoint: endpoint) else { return response }
            authorization = answer
            await tokens.set(answer, for: scopeKey)
        }
    }

    /// The credentials for an endpoint: the job's when they are for it (never a mirror's), else
    /// the auth file's.
    func credentialsFor(_ endpoint: Endpoint) -> RegistryCredentials? {
        if !endpoint.isMirror, let credentials, credentials.apply(to: reference.registry) { return credentials }
        return authFile?.credentials(for: endpoint.credentialName)
    }

    /// The `Authorization` value that answers `challenge`, or nil when there is none to give.
    func answer(_ challenge: AuthChallenge, endpoint: Endpoint) async throws(RunnerError) -> Secret? {
        let credentials = credentialsFor(endpoint)
        switch challenge.scheme {
        case "basic":
            return credentials?.basicAuthorization
        case "bearer":
            guard let realm = challenge.realm, realm.hasPrefix("https://") || realm.hasPrefix("http://") else {
                throw RunnerError(
                    .network, input: reference.description,
                    problem:
                        "\(endpoint.baseURL) asked for a token without a usable realm (\"\(challenge.realm ?? "")\")",
                    fix: "check the registry's token service configuration")
            }
            var query = [String]()
            if let service = challenge.service { query.append("service=" + Self.percentEncoded(service)) }
            let scope = challenge.scope ?? "repository:\(reference.repository):pull"
            query.append("scope=" + Self.percentEncoded(scope))
            let url = realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
            var headers: [(String, Secret)] = []
            let realmHost = RegistryCredentials.registryName(realm)
            let safeRealm = realm.hasPrefix("https://") || ImageReference.isLoopback(host: realmHost)
            if let credentials {
                if safeRealm {
                    headers.append(("Authorization", credentials.basicAuthorization))
                } else {
                    logger.warning(
                        "not sending credentials to a plain-http token realm", metadata: ["realm": "\(realm)"])
                }
            }
            let body = scratch + "/.token-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            defer { unlink(body) }
            let response = try await perform(url: url, headers: headers, output: body)
            guard response.status == 200 else {
                throw RunnerError(
                    .permission, input: reference.description,
                    problem: "the token service \(realm) answered HTTP \(response.status)"
                        + (credentials == nil ? " (no credentials were given)" : " (it refused the credentials)"),
                    fix: "check the job's `credentials:` or RUNNER_REGISTRY_AUTH_FILE")
            }
            struct TokenResponse: Decodable {
                var token: String?
                var access_token: String?
            }
            let bytes = try FilePaths.read(body)
            guard let decoded = try? JSONDecoder().decode(TokenResponse.self, from: Data(bytes)),
                let token = decoded.token ?? decoded.access_token, !token.isEmpty
            else {
                throw RunnerError(
                    .network, input: reference.description, problem: "the token service \(realm) sent no token",
                    fix: "check the registry's token service")
            }
            return Secret("Bearer " + token)
        default:
            return nil
        }
    }

    /// One GET with retries on transient failures. Throws when curl never got a response.
    func perform(url: String, headers: [(String, Secret)], output: String) async throws(RunnerError) -> Response {
        let request = RegistryCurl.Request(url: url, output: output)
        let command = curl.get(request)
        let input = curl.config(headers: headers)
        var attempt = 0
        while true {
            let result = try await runner.run(command, input: input, output: .captured)
            let delay = attempt < settings.retryDelays.count ? settings.retryDelays[attempt] : nil
            attempt += 1
            if case .exited(let code) = result.status, code != 0 {
                let message = result.standardError.trimmedWhitespace
                if RegistryCurl.transientExitCodes.contains(code), let delay {
                    logger.info(
                        "registry request failed; trying again", metadata: ["url": "\(url)", "curl": "\(code)"])
                    try await pause(delay)
                    continue
                }
                throw RunnerError(
                    .network, input: reference.description,
                    problem: "could not reach \(Self.origin(url)) (curl exit \(code): \(message))",
                    fix: "check that the registry is up and reachable (proxy: HTTPS_PROXY in config.env)")
            }
            guard result.status.isSuccess else {
                throw RunnerError(
                    .network, input: reference.description,
                    problem: "curl \(result.status) fetching \(Self.origin(url))",
                    fix: nil)
            }
            let response = Self.parse(result.standardOutput)
            if response.status == 429 || response.status >= 500 || response.status == 0, let delay {
                let retryAfter = response.header("retry-after").flatMap(Double.init).map { min($0, 30) }
                logger.info(
                    "registry answered \(response.status); trying again", metadata: ["url": "\(Self.origin(url))"])
                try await pause(retryAfter ?? delay)
                continue
            }
            return response
        }
    }

    func pause(_ seconds: Double) async throws(RunnerError) {
        do {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        } catch {
            throw RunnerError(.timeout, input: reference.description, problem: "the pull was cancelled", fix: nil)
        }
    }

    /// `%{http_code}\n%{header_json}` → status and headers.
    static func parse(_ output: String) -> Response {
        let newline = output.firstIndex(of: "\n") ?? output.endIndex
        let status = Int(output[..<newline].trimmedWhitespace) ?? 0
        let json = newline < output.endIndex ? output[output.index(after: newline)...] : ""
        let headers = (try? JSONDecoder().decode([String: [String]].self, from: Data(json.utf8))) ?? [:]
        var lowered: [String: [String]] = [:]
        for (name, values) in headers { lowered[name.lowercased(), default: []] += values }
        return Response(status: status, headers: lowered)
    }

    /// `https://host:port` of a URL (no path, no query: nothing secret), for messages.
    static func origin(_ url: String) -> String {
        guard let scheme = RegistryCredentials.schemeEnd(Substring(url)) else { return url }
        let host = url[scheme...].prefix { $0 != "/" && $0 != "?" }
        return String(url[..<scheme]) + host
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                let digits = Array("0123456789ABCDEF")
                out += "%" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xf)])
            }
        }
        return out
    }
}

/// `Authorization` values per endpoint and repository, for one pull.
actor TokenCache {
    var values: [String: Secret] = [:]
    func value(for key: String) -> Secret? { values[key] }
    func set(_ value: Secret, for key: String) { values[key] = value }
}
