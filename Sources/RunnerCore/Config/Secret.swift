/// A credential value (token, PAT, JIT blob, private key) that must never reach a log or a
/// command line. Its `description` is a fixed placeholder, so string interpolation into a
/// log line cannot leak it; code that must send it reads ``value`` explicitly.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself. Only hand it to an environment variable, a 0600 file or stdin.
    public let value: String

    public init(_ value: String) { self.value = value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
