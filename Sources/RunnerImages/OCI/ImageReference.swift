import RunnerCore

/// A registry image reference in docker's normal form: `node:20` is
/// `docker.io/library/node:20`, `ghcr.io/org/ci:1.4` stays, `name@sha256:…` pins a manifest.
///
/// Parsing follows distribution's reference grammar: the first component is a registry when it
/// holds a `.` or a `:` or is `localhost` (and more components follow); otherwise the registry
/// is `docker.io`, where a one-component repository gets `library/`. No tag and no digest means
/// `latest`. With both, the digest decides what is pulled and the tag is kept for display.
public struct ImageReference: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The registry as written in references: `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    public var registry: String
    /// The repository: `library/node`, `org/ci`.
    public var repository: String
    /// The tag, when there is one (`latest` when the reference names neither tag nor digest).
    public var tag: String?
    /// The manifest digest (`sha256:<hex>`), when the reference pins one.
    public var digest: String?

    public init(registry: String, repository: String, tag: String?, digest: String?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Parses `text`; throws ``RunnerError/Code/invalidInput`` naming what is wrong.
    public init(parsing text: String) throws(RunnerError) {
        func invalid(_ problem: String) -> RunnerError {
            RunnerError(
                .invalidInput, input: "image reference '\(text)'", problem: problem,
                fix: "write it as [REGISTRY/]REPOSITORY[:TAG][@sha256:HEX], e.g. node:20 or ghcr.io/org/ci:1.4")
        }
        var rest = Substring(text.hasPrefix("docker://") ? String(text.dropFirst("docker://".count)) : text)
        guard !rest.isEmpty, rest.count <= 512 else { throw invalid("is empty or longer than 512 characters") }
        guard rest.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else { throw invalid("holds spaces or non-ASCII") }
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            let value = String(rest[rest.index(after: at)...])
            guard Self.isDigest(value) else { throw invalid("the digest '\(value)' is not sha256:<64 lowercase hex>") }
            digest = value
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let value = String(rest[rest.index(after: colon)...])
            guard Self.isTag(value) else { throw invalid("the tag '\(value)' is not valid") }
            tag = value
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var registry = "docker.io"
        if components.count > 1,
            let first = components.first, first.contains(".") || first.contains(":") || first == "localhost"
        {
            registry = first.lowercased()
            components.removeFirst()
            guard Self.isRegistry(registry) else { throw invalid("the registry '\(first)' is not HOST[:PORT]") }
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = "docker.io" }
        if registry == "docker.io" && components.count == 1 { components.insert("library", at: 0) }
        guard !components.isEmpty, components.allSatisfy(Self.isPathComponent) else {
            throw invalid("the repository '\(components.joined(separator: "/"))' is not lowercase path components")
        }
        let repository = components.joined(separator: "/")
        guard repository.count <= 255 else { throw invalid("the repository is longer than 255 characters") }
        if tag == nil && digest == nil { tag = "latest" }
        self.init(registry: registry, repository: repository, tag: tag, digest: digest)
    }

    /// `docker.io/library/node:20`, `ghcr.io/org/ci@sha256:…` (tag and digest when both).
    public var description: String {
        var text = registry + "/" + repository
        if let tag { text += ":" + tag }
        if let digest { text += "@" + digest }
        return text
    }

    /// `docker.io/library/node`: the reference without tag and digest.
    public var name: String { registry + "/" + repository }

    /// What the registry's manifest endpoint is asked for: the digest when pinned, else the tag.
    public var manifestReference: String { digest ?? tag ?? "latest" }

    /// The same repository pinned to `digest` (the tag dropped).
    public func pinned(to digest: String) -> ImageReference {
        ImageReference(registry: registry, repository: repository, tag: nil, digest: digest)
    }

    /// The host the registry API is served from: `registry-1.docker.io` for `docker.io`.
    public var registryHost: String { registry == "docker.io" ? "registry-1.docker.io" : registry }

    /// Whether the registry is on the loopback interface (`localhost`, `127.0.0.0/8`, `[::1]`):
    /// spoken to over plain HTTP, as docker does.
    public var isLoopback: Bool { Self.isLoopback(host: registry) }

    /// Whether `host` (`HOST[:PORT]`) names the loopback interface.
    public static func isLoopback(host: String) -> Bool {
        var name = Substring(host)
        if name.hasPrefix("[") {
            return name.hasPrefix("[::1]")
        }
        if let colon = name.lastIndex(of: ":") { name = name[..<colon] }
        if name == "localhost" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    // MARK: Grammar

    static func isDigest(_ text: String) -> Bool {
        text.hasPrefix("sha256:") && text.utf8.count == 71
            && text.utf8.dropFirst(7).allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    static func isTag(_ text: String) -> Bool {
        guard let first = text.utf8.first, text.utf8.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool {
            (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || c == 95
        }
        return word(first) && text.utf8.allSatisfy { word($0) || $0 == 46 || $0 == 45 }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
    static func isPathComponent(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, let last = bytes.last else { return false }
        func alnum(_ c: UInt8) -> Bool { (48...57).contains(c) || (97...122).contains(c) }
        guard alnum(first), alnum(last) else { return false }
        var index = 0
        while index < bytes.count {
            let c = bytes[index]
            if alnum(c) {
                index += 1
                continue
            }
            // A separator run: ".", "_", "__" or one or more "-".
            var end = index
            while end < bytes.count && !alnum(bytes[end]) { end += 1 }
            let run = bytes[index..<end]
            let valid = run == [46] || run == [95] || run == [95, 95] || run.allSatisfy { $0 == 45 }
            guard valid else { return false }
            index = end
        }
        return true
    }

    /// `HOST[:PORT]`: DNS labels or an IPv4 address, or `[IPv6]`, with an optional port.
    static func isRegistry(_ text: String) -> Bool {
        var host = Substring(text)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let inside = host[host.index(after: host.startIndex)..<close]
            guard !inside.isEmpty, inside.allSatisfy({ $0.isHexDigit || $0 == ":" }) else { return false }
            host = host[host.index(after: close)...]
            guard host.isEmpty || host.hasPrefix(":") else { return false }
            return host.isEmpty || isPort(host.dropFirst())
        }
        if let colon = host.lastIndex(of: ":") {
            guard isPort(host[host.index(after: colon)...]) else { return false }
            host = host[..<colon]
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty
            && labels.allSatisfy { label in
                !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                    && label.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" }
            }
    }

    static func isPort(_ text: Substring) -> Bool {
        guard let port = Int(text), (1...65535).contains(port) else { return false }
        return true
    }
}
