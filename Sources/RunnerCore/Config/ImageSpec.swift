/// One entry of `RUNNER_IMAGES`: a guest image to install, pinned by digest.
public struct ImageSpec: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let url: String
    /// Lowercase hex.
    public let sha256: String

    public var description: String { "\(name)=\(url)@sha256:\(sha256)" }

    /// Parses `NAME=URL@sha256:HEX`; nil when malformed.
    public init?(_ text: String) {
        guard let equals = text.firstIndex(of: "="),
            let at = text.ranges(of: "@sha256:").last
        else { return nil }
        let name = String(text[..<equals])
        let url = String(text[text.index(after: equals)..<at.lowerBound])
        let hex = String(text[at.upperBound...])
        guard ConfigSyntax.isImageName(name), ConfigSyntax.isURL(url), SHA256Digest.isValidHex(hex) else { return nil }
        self.name = name
        self.url = url
        self.sha256 = hex.lowercased()
    }
}
