/// One invocation of an external program, as a value.
///
/// Every external tool we run (`systemd-nspawn`, `nsenter`, `systemd-run`, `mmdebstrap`,
/// `visudo`, `curl`, …) is built by one typed function that returns a `Command`, so unit
/// tests can check its argv without spawning anything. Secrets never go into
/// ``arguments``; they travel in ``environment`` (which ``description`` never prints) or in
/// files.
public struct Command: Sendable, Hashable, CustomStringConvertible {
    /// The program: an absolute path, or a name looked up in `PATH`.
    public var executable: String
    /// The arguments after the program name.
    public var arguments: [String]
    /// Variables set on top of the inherited environment (nil value: removed).
    public var environment: [String: String?]
    /// Replace the inherited environment instead of adding to it.
    public var clearsEnvironment: Bool
    /// The working directory, or nil for the caller's.
    public var workingDirectory: String?

    public init(
        _ executable: String,
        _ arguments: [String] = [],
        environment: [String: String?] = [:],
        clearsEnvironment: Bool = false,
        workingDirectory: String? = nil
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.clearsEnvironment = clearsEnvironment
        self.workingDirectory = workingDirectory
    }

    /// `executable` followed by `arguments`: what `/proc/<pid>/cmdline` shows.
    public var argv: [String] { [executable] + arguments }

    /// A shell-like rendering for logs. Environment values are never shown.
    public var description: String {
        var parts: [String] = []
        if !environment.isEmpty {
            parts.append("[env: " + environment.keys.sorted().joined(separator: ",") + "]")
        }
        parts.append(contentsOf: argv.map(Command.shellQuoted))
        return parts.joined(separator: " ")
    }

    /// Quotes one word for display the way a POSIX shell would read it back.
    public static func shellQuoted(_ word: String) -> String {
        let safe = word.allSatisfy { c in
            c.isASCII && (c.isLetter || c.isNumber || "-_./=:,+@%".contains(c))
        }
        if safe && !word.isEmpty { return word }
        return "'" + word.replacing("'", with: "'\\''") + "'"
    }
}
