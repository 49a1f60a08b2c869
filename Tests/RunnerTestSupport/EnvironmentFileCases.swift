import Testing

/// Tricky `EnvironmentFile=` inputs with the environment systemd 252 makes of them.
///
/// Shared by the parser's unit tests (RunnerCoreTests) and the test that feeds every case to
/// the real systemd in a booted guest (RunnerBuildKitTests), so the table is checked against
/// systemd itself. Every variable a case sets starts with `T_`.
public struct EnvironmentFileCase: Sendable, CustomTestStringConvertible {
    public let name: String
    /// The file's bytes.
    public let bytes: [UInt8]
    /// The `T_*` variables systemd sets.
    public let expected: [String: String]
    /// Whether the parser must also report a problem (something systemd reads silently).
    public let flagged: Bool

    public init(_ name: String, _ text: String, _ expected: [String: String], flagged: Bool = false) {
        self.init(name, bytes: Array(text.utf8), expected, flagged: flagged)
    }

    public init(_ name: String, bytes: [UInt8], _ expected: [String: String], flagged: Bool = false) {
        self.name = name
        self.bytes = bytes
        self.expected = expected
        self.flagged = flagged
    }

    public var testDescription: String { name }

    public static let all: [EnvironmentFileCase] = [
        .init("plain", "T_A=b\n", ["T_A": "b"]),
        .init("spaces around =, trailing spaces", "T_A = b   \n", ["T_A": "b"]),
        .init("leading spaces before the key", "   T_A=b\n", ["T_A": "b"]),
        .init("double quotes", "T_A=\"b c\"\n", ["T_A": "b c"]),
        .init("single quotes", "T_A='b c'\n", ["T_A": "b c"]),
        .init("# inside double quotes", "T_A=\"a#b\"\n", ["T_A": "a#b"]),
        .init("# after an unquoted value is kept", "T_A=b # c\n", ["T_A": "b # c"]),
        .init(
            "escaped quote and dollar in double quotes", "T_A=\"x \\\" \\$y \\` \\\\ z\"\n", ["T_A": "x \" $y ` \\ z"]),
        .init("other escapes keep the backslash in double quotes", "T_A=\"x\\ny\"\n", ["T_A": "x\\ny"]),
        .init("no escapes in single quotes", "T_A='x \\\" y'\n", ["T_A": "x \\\" y"]),
        .init("backslash escapes outside quotes", "T_A=x\\ y\\\\z\n", ["T_A": "x y\\z"]),
        .init("escaped trailing space", "T_A=x\\ \n", ["T_A": "x "]),
        .init("empty value", "T_A=\nT_B=\"\"\n", ["T_A": "", "T_B": ""]),
        .init("line continuation", "T_A=one\\\ntwo\n", ["T_A": "onetwo"]),
        .init("continuation inside double quotes", "T_A=\"one\\\ntwo\"\n", ["T_A": "onetwo"]),
        .init("newline inside double quotes", "T_A=\"one\ntwo\"\n", ["T_A": "one\ntwo"]),
        .init("CRLF line ends", "T_A=b\r\nT_B=\"c\"\r\n", ["T_A": "b", "T_B": "c"]),
        .init("duplicate keys: the last wins", "T_A=1\nT_A=2\n", ["T_A": "2"]),
        .init("comments with # and ;", "# T_A=1\n; T_B=2\n  # T_C=3\nT_D=4\n", ["T_D": "4"]),
        .init("quoted pieces are joined", "T_A=\"a\"'b'c\n", ["T_A": "abc"]),
        .init("space between quoted pieces is dropped", "T_A=\"a\" \"b\"\n", ["T_A": "ab"]),
        .init("quotes inside an unquoted value are literal", "T_A=b\"c\"\n", ["T_A": "b\"c\""]),
        .init("no variable expansion", "T_A=$HOME ${PATH}\n", ["T_A": "$HOME ${PATH}"]),
        .init("escaped quotes outside quotes", "T_A=\\\"q\\\"\n", ["T_A": "\"q\""]),
        .init("trailing spaces inside quotes are kept", "T_A=\"x  \"\n", ["T_A": "x  "]),
        .init("tab inside a value", "T_A=a\tb\n", ["T_A": "a\tb"]),
        .init("UTF-8 value", "T_A=grüße\n", ["T_A": "grüße"]),
        .init("no final newline", "T_A=b", ["T_A": "b"]),
        .init("= inside a value", "T_A=a=b==\n", ["T_A": "a=b=="]),
        .init(
            "a UTF-8 byte order mark makes the first key invalid",
            bytes: [0xEF, 0xBB, 0xBF] + Array("T_A=1\nT_B=2\n".utf8),
            ["T_B": "2"], flagged: true),
        .init("a line without = is ignored", "T_A\nT_B=2\n", ["T_B": "2"], flagged: true),
        .init("export is not understood", "export T_A=1\nT_B=2\n", ["T_B": "2"], flagged: true),
        .init("an invalid name is ignored", "T-A=1\nT_B=2\n", ["T_B": "2"], flagged: true),
        .init(
            "a comment ending in a backslash swallows the next line (252)", "# note \\\nT_A=1\nT_B=2\n", ["T_B": "2"],
            flagged: true),
        .init("an unclosed quote takes the rest of the file", "T_A=\"x\nT_B=2\n", ["T_A": "x\nT_B=2\n"], flagged: true),
    ]
}
