/// The error every user-facing failure in `runner-build` and `runner-agent` ends as.
///
/// It names the input it is about (a file, a flag, a config key, an archive entry),
/// what is wrong with it, and what to do about it. ``description`` is what the
/// executables print: `error: <input>: <problem>` followed by `fix: <fix>`.
public struct RunnerError: Error, CustomStringConvertible, Sendable {
    /// A stable, machine-readable category.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A flag, argument or value given by the user is not acceptable.
        public static let invalidInput = Code("invalid-input")
        /// A configuration file or one of its keys is wrong.
        public static let invalidConfig = Code("invalid-config")
        /// A file, image, guest or other named thing does not exist.
        public static let notFound = Code("not-found")
        /// Something already exists where we would write.
        public static let alreadyExists = Code("already-exists")
        /// Reading or writing the file system failed.
        public static let io = Code("io")
        /// An external command could not start or exited unsuccessfully.
        public static let commandFailed = Code("command-failed")
        /// A digest, manifest or signature check failed.
        public static let integrity = Code("integrity")
        /// An archive or payload broke a safety rule.
        public static let unsafeInput = Code("unsafe-input")
        /// The operation needs privileges the process does not have.
        public static let permission = Code("permission")
        /// The operation is not supported (yet, or on this host).
        public static let unsupported = Code("unsupported")
        /// A network request failed.
        public static let network = Code("network")
        /// A bounded wait ran out.
        public static let timeout = Code("timeout")
        /// Another process holds what this one needs (the host's admin lock).
        public static let busy = Code("busy")
        /// A bug: something that should not happen did.
        public static let `internal` = Code("internal")
    }

    public var code: Code
    /// What the error is about: a path, a flag, a key, an entry name.
    public var input: String
    /// What is wrong with it, as a sentence fragment without a trailing period.
    public var problem: String
    /// What the user can do about it, or nil when there is nothing to suggest.
    public var fix: String?
    /// The lower-level error, when there is one.
    public var underlying: (any Error)?

    public init(
        _ code: Code,
        input: String,
        problem: String,
        fix: String? = nil,
        underlying: (any Error)? = nil
    ) {
        self.code = code
        self.input = input
        self.problem = problem
        self.fix = fix
        self.underlying = underlying
    }

    public var description: String {
        var text = "\(input): \(problem)"
        if let underlying, !problem.contains("\(underlying)") {
            text += " (\(underlying))"
        }
        if let fix {
            text += "\nfix: \(fix)"
        }
        return text
    }
}
