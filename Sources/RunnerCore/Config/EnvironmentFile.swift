/// A reader of `config.env` that reads exactly what systemd's `EnvironmentFile=` reads.
///
/// ``parse(_:)`` follows the state machine of systemd's `parse_env_file_internal()`
/// (`src/basic/env-file.c`, v252 as in Debian 12, and later): `#` and `;` start a comment only
/// at the start of a line; spaces around `=` are dropped; single quotes take everything
/// literally; inside double quotes `\"`, `\\`, `` \` `` and `\$` lose their backslash and any
/// other `\x` keeps it; outside quotes `\x` gives `x`; a backslash before a newline joins the
/// next line; a `#` after a value is part of the value; trailing whitespace of an unquoted value
/// is dropped; both LF and CR end a line; the last of duplicate keys wins.
///
/// Beyond that, it reports (in ``problems``) every place where systemd would silently read
/// something other than what the author most likely meant, or where systemd versions differ:
/// a UTF-8 byte order mark (systemd keeps it, so the first key is ignored), a line without
/// `=`, an invalid variable name, a comment ending in a backslash (v252 continues the comment
/// onto the next line, v254 and later do not), an unclosed quote, a NUL byte, invalid UTF-8.
/// It warns (in ``warnings``) where systemd's reading is well defined but rarely meant: a `#`
/// after whitespace in an unquoted value, which systemd keeps in the value (not a comment).
public struct EnvironmentFile: Sendable, Hashable {
    /// One `KEY=value` as systemd reads it.
    public struct Assignment: Sendable, Hashable {
        /// The variable name (after systemd trims whitespace around it).
        public var key: String
        /// The value after quote removal and unescaping.
        public var value: String
        /// The 1-based line the key starts on (counting LF line feeds).
        public var line: Int

        public init(key: String, value: String, line: Int) {
            self.key = key
            self.value = value
            self.line = line
        }
    }

    /// Something systemd reads differently from what was probably meant.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        /// The 1-based line.
        public var line: Int
        /// What is wrong, as a sentence fragment.
        public var message: String
        /// What to write instead.
        public var fix: String

        public init(line: Int, message: String, fix: String) {
            self.line = line
            self.message = message
            self.fix = fix
        }

        public var description: String { "line \(line): \(message) (\(fix))" }
    }

    /// Every assignment in file order, duplicates included.
    public var assignments: [Assignment]
    /// Constructs that systemd would read silently differently; empty for a clean file.
    public var problems: [Problem]
    /// Constructs systemd reads in a defined way that is rarely what was meant (`KEY=value # note`
    /// keeps ` # note` in the value); not errors.
    public var warnings: [Problem] = []

    /// What systemd puts into the service's environment: valid names only, last one wins.
    public var environment: [String: String] {
        var result: [String: String] = [:]
        for assignment in assignments where EnvironmentFile.isValidName(assignment.key) {
            result[assignment.key] = assignment.value
        }
        return result
    }

    /// Whether `name` is a variable name systemd accepts (`[A-Za-z_][A-Za-z0-9_]*`).
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(48...57).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            (65...90).contains(byte) || (97...122).contains(byte) || (48...57).contains(byte) || byte == 95
        }
    }

    /// Parses the bytes of an environment file.
    public static func parse(_ bytes: [UInt8]) -> EnvironmentFile {
        var parser = Parser()
        parser.run(bytes)
        return EnvironmentFile(assignments: parser.assignments, problems: parser.problems, warnings: parser.warnings)
    }

    /// Parses a string (tests and rendered files).
    public static func parse(_ text: String) -> EnvironmentFile {
        parse(Array(text.utf8))
    }

    /// Renders one assignment so that systemd (and ``parse(_:)``) read back exactly `value`.
    ///
    /// Plain values are written bare; anything else in double quotes with `"`, `\`, `` ` ``
    /// and `$` escaped. Values with control characters other than tab cannot be written.
    public static func line(key: String, value: String) -> String {
        let needsQuotes =
            value.isEmpty
            || value.unicodeScalars.contains { scalar in
                !(scalar.isASCII
                    && (("A"..."Z").contains(scalar) || ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
                        || "_-.,:/@+=%".unicodeScalars.contains(scalar)))
            }
        guard needsQuotes else { return "\(key)=\(value)" }
        var quoted = "\""
        for character in value {
            if character == "\"" || character == "\\" || character == "`" || character == "$" {
                quoted.append("\\")
            }
            quoted.append(character)
        }
        quoted.append("\"")
        return "\(key)=\(quoted)"
    }
}

/// A transliteration of systemd's `parse_env_file_internal()` state machine over bytes.
private struct Parser {
    enum State {
        case preKey, key, preValue, value, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape
        case comment, commentEscape
    }

    var assignments: [EnvironmentFile.Assignment] = []
    var problems: [EnvironmentFile.Problem] = []
    var warnings: [EnvironmentFile.Problem] = []

    private var state = State.preKey
    private var key: [UInt8] = []
    private var value: [UInt8] = []
    private var lastKeyWhitespace: Int? = nil
    private var lastValueWhitespace: Int? = nil
    private var line = 1
    private var keyLine = 1
    private var quoteLine = 1
    private var commentEscapeLine: Int? = nil
    /// The byte before the current one, and whether this assignment already has the ` #` warning.
    private var previous: UInt8? = nil
    private var warnedHash = false

    private static func isWhitespace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
    private static func isNewline(_ c: UInt8) -> Bool { c == 0x0A || c == 0x0D }

    mutating func run(_ input: [UInt8]) {
        var bytes = input
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            problem(
                1, "the file starts with a UTF-8 byte order mark, which systemd keeps as part of the first key",
                fix: "save the file as UTF-8 without a byte order mark")
        }
        if let nul = bytes.firstIndex(of: 0) {
            let nulLine = bytes[..<nul].count(where: { $0 == 0x0A }) + 1
            problem(
                nulLine, "a NUL byte: systemd stops reading the file here", fix: "remove it; this is not a text file")
            bytes.removeSubrange(nul...)
        }
        if String(validating: bytes, as: UTF8.self) == nil {
            let badLine = Self.firstInvalidUTF8Line(bytes)
            problem(badLine, "not valid UTF-8: systemd refuses the whole file", fix: "save the file as UTF-8")
        }
        for c in bytes {
            step(c)
            previous = c
            if c == 0x0A { line += 1 }
        }
        finish()
    }

    private mutating func step(_ c: UInt8) {
        if state == .preValue || state == .value { warnIfCommentLike(c) }
        switch state {
        case .preKey:
            if c == UInt8(ascii: "#") || c == UInt8(ascii: ";") {
                state = .comment
            } else if !Self.isWhitespace(c) {
                state = .key
                lastKeyWhitespace = nil
                keyLine = line
                key.append(c)
            }
        case .key:
            if Self.isNewline(c) {
                state = .preKey
                problem(
                    keyLine, Self.noEquals(key), fix: "write KEY=value, or start the line with # to make it a comment")
                key.removeAll()
            } else if c == UInt8(ascii: "=") {
                state = .preValue
                lastValueWhitespace = nil
            } else {
                if !Self.isWhitespace(c) {
                    lastKeyWhitespace = nil
                } else if lastKeyWhitespace == nil {
                    lastKeyWhitespace = key.count
                }
                key.append(c)
            }
        case .preValue:
            if Self.isNewline(c) {
                state = .preKey
                push()
            } else if c == UInt8(ascii: "'") {
                state = .singleQuote
                quoteLine = line
            } else if c == UInt8(ascii: "\"") {
                state = .doubleQuote
                quoteLine = line
            } else if c == UInt8(ascii: "\\") {
                state = .valueEscape
            } else if !Self.isWhitespace(c) {
                state = .value
                value.append(c)
            }
        case .value:
            if Self.isNewline(c) {
                state = .preKey
                if let cut = lastValueWhitespace { value.removeSubrange(cut...) }
                push()
            } else if c == UInt8(ascii: "\\") {
                state = .valueEscape
                lastValueWhitespace = nil
            } else {
                if !Self.isWhitespace(c) {
                    lastValueWhitespace = nil
                } else if lastValueWhitespace == nil {
                    lastValueWhitespace = value.count
                }
                value.append(c)
            }
        case .valueEscape:
            state = .value
            if !Self.isNewline(c) { value.append(c) }
        case .singleQuote:
            if c == UInt8(ascii: "'") {
                state = .preValue
            } else {
                value.append(c)
            }
        case .doubleQuote:
            if c == UInt8(ascii: "\"") {
                state = .preValue
            } else if c == UInt8(ascii: "\\") {
                state = .doubleQuoteEscape
            } else {
                value.append(c)
            }
        case .doubleQuoteEscape:
            state = .doubleQuote
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c == UInt8(ascii: "`") || c == UInt8(ascii: "$") {
                value.append(c)
            } else if c != 0x0A {
                value.append(UInt8(ascii: "\\"))
                value.append(c)
            }
        case .comment:
            if c == UInt8(ascii: "\\") {
                state = .commentEscape
            } else if Self.isNewline(c) {
                state = .preKey
            }
        case .commentEscape:
            // systemd 252 stays in the comment whatever follows; 254 and later end the comment
            // at a newline. Follow 252 (Debian 12) and flag the difference.
            if Self.isNewline(c) {
                problem(
                    line,
                    "a comment ends with a backslash: systemd 252 reads the next line as part of the comment,"
                        + " systemd 254 and later do not", fix: "remove the trailing backslash")
            }
            state = .comment
        }
    }

    private mutating func finish() {
        switch state {
        case .singleQuote, .doubleQuote, .doubleQuoteEscape:
            problem(
                quoteLine, "a quote opened here is never closed: systemd takes the rest of the file as the value",
                fix: "close the quote")
            push()
        case .preValue, .value, .valueEscape:
            if state == .value, let cut = lastValueWhitespace { value.removeSubrange(cut...) }
            push()
        case .key:
            problem(keyLine, Self.noEquals(key), fix: "write KEY=value, or start the line with # to make it a comment")
        case .preKey, .comment, .commentEscape:
            break
        }
    }

    private mutating func push() {
        if let cut = lastKeyWhitespace { key.removeSubrange(cut...) }
        let name = String(decoding: key, as: UTF8.self)
        if !EnvironmentFile.isValidName(name) {
            let shown = name.unicodeScalars.map {
                $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}"
            }
            .joined()
            problem(
                keyLine, "'\(shown)' is not a valid variable name: systemd ignores this assignment",
                fix: "use letters, digits and _ only, not starting with a digit (no 'export')")
        }
        assignments.append(.init(key: name, value: String(decoding: value, as: UTF8.self), line: keyLine))
        key.removeAll()
        value.removeAll()
        lastKeyWhitespace = nil
        lastValueWhitespace = nil
        warnedHash = false
    }

    /// `KEY=value # note` (or `KEY="value" # note`, `KEY= # note`): outside quotes, systemd
    /// keeps a `#` after whitespace and everything after it in the value. The value is not
    /// shown (it may be a secret); the key is, when it is a valid name.
    private mutating func warnIfCommentLike(_ c: UInt8) {
        guard c == UInt8(ascii: "#"), previous == 0x20 || previous == 0x09, !warnedHash else { return }
        warnedHash = true
        var name = String(decoding: key, as: UTF8.self)
        if let cut = lastKeyWhitespace { name = String(decoding: key[..<cut], as: UTF8.self) }
        let subject = EnvironmentFile.isValidName(name) ? "\(name): the" : "the"
        warnings.append(
            .init(
                line: line,
                message: "\(subject) unquoted value contains ' #': systemd keeps the '#' and everything after it"
                    + " in the value (a comment starts only at the beginning of a line)",
                fix: "put the comment on its own line, or quote the whole value if the '#' belongs to it"))
    }

    /// The message for a line without `=`. The line is quoted only when it looks like a
    /// variable name: a pasted token on a line of its own must not reach a log.
    private static func noEquals(_ key: [UInt8]) -> String {
        let text = String(decoding: key, as: UTF8.self).trimmingTrailingWhitespace()
        if EnvironmentFile.isValidName(text) && text.uppercased() == text {
            return "'\(text)' has no '=': systemd ignores this line"
        }
        return "this line has no '=': systemd ignores it"
    }

    private mutating func problem(_ line: Int, _ message: String, fix: String) {
        problems.append(.init(line: line, message: message, fix: fix))
    }

    private static func firstInvalidUTF8Line(_ bytes: [UInt8]) -> Int {
        var lineNumber = 1
        var start = 0
        for (index, byte) in bytes.enumerated() where byte == 0x0A {
            if String(validating: bytes[start..<index], as: UTF8.self) == nil { return lineNumber }
            lineNumber += 1
            start = index + 1
        }
        return lineNumber
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return String(text)
    }

    func trimmingTrailingWhitespace() -> String {
        var scalars = Substring(self)
        while let last = scalars.last, last == " " || last == "\t" || last == "\r" { scalars.removeLast() }
        return String(scalars)
    }
}
