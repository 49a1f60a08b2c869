/// One entry of `RUNNER_IMAGE_ALIASES`: a job's container image name mapped to a guest image.
public struct ImageAlias: Sendable, Hashable, CustomStringConvertible {
    /// What a workflow writes in `container:`, e.g. `ubuntu:22.04`.
    public let alias: String
    /// The guest image name, e.g. `debian-bookworm`.
    public let image: String

    public var description: String { "\(alias)=\(image)" }

    /// Parses `ALIAS=NAME` (split at the last `=`); nil when malformed.
    public init?(_ text: String) {
        guard let equals = text.lastIndex(of: "=") else { return nil }
        let alias = String(text[..<equals])
        let image = String(text[text.index(after: equals)...])
        guard !alias.isEmpty, !alias.contains("="), ConfigSyntax.isImageName(image) else { return nil }
        guard alias.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F }) else {
            return nil
        }
        self.alias = alias
        self.image = image
    }
}
