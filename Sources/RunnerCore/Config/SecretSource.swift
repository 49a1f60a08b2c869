/// Where a secret comes from: the value itself in config.env, or a 0600 file.
public enum SecretSource: Sendable, Hashable, CustomStringConvertible {
    case inline(String)
    case file(String)

    /// Never shows an inline value.
    public var description: String {
        switch self {
        case .inline: "<redacted>"
        case .file(let path): "file \(path)"
        }
    }

    /// The secret: the inline value, or the file's content without surrounding whitespace (its
    /// trailing newline). An unreadable or empty file is a configuration error naming the file.
    /// `layout` maps the file's host path (tests use a temporary root). Validation
    /// (``RunnerConfig/Options/secretFiles``) has checked the file's mode; this only reads it.
    public func read(layout: HostLayout = HostLayout()) throws(RunnerError) -> String {
        switch self {
        case .inline(let value):
            return value
        case .file(let path):
            let bytes: [UInt8]
            do {
                bytes = try FilePaths.read(layout.path(path))
            } catch {
                throw RunnerError(
                    .invalidConfig, input: path, problem: "cannot be read",
                    fix: "create it (a regular file, mode 0600, owner root) or fix the *_FILE key that names it")
            }
            let text = String(decoding: bytes, as: UTF8.self)
            guard let first = text.firstIndex(where: { !$0.isWhitespace }),
                let last = text.lastIndex(where: { !$0.isWhitespace })
            else {
                throw RunnerError(.invalidConfig, input: path, problem: "is empty", fix: "put the secret in \(path)")
            }
            return String(text[first...last])
        }
    }
}
