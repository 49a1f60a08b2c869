import Testing

@testable import RunnerHookClient

@Suite struct JSONValueTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    @Test func objectsArraysAndScalarsParse() throws {
        let value = try parse(#" {"a": [1, -2.5e3, true, false, null, "x"], "b": {"c": {}}, "d": []} "#)
        #expect(
            value["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null, .string("x")]))
        #expect(value["b"]?["c"] == .object([]))
        #expect(value["d"] == .array([]))
        #expect(value["missing"] == nil)
        #expect(value["a"]?["x"] == nil)
    }

    @Test func escapesAndSurrogatePairsDecode() throws {
        let value = try parse(#""q\" b\\ s\/ \b\f\n\r\t \u00e9 \ud83d\ude00 ü""#)
        #expect(value.string == "q\" b\\ s/ \u{8}\u{c}\n\r\t é 😀 ü")
    }

    @Test func theLastOfARepeatedNameWins() throws {
        #expect(try parse(#"{"a":"1","a":"2"}"#)["a"]?.string == "2")
    }

    @Test func numbersConvertOnlyWhenTheyAreSmallIntegers() throws {
        #expect(try parse("17").int32 == 17)
        #expect(try parse("-9").int32 == -9)
        #expect(try parse("1.5").int32 == nil)
        #expect(try parse("99999999999").int32 == nil)
        #expect(try parse("\"3\"").int32 == nil)
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "01", "1.", "1e", "-", "+1", "tru", "nul",
        "\"unterminated", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"tab\there\"",
        "{} {}", "[1] x", "\"\\u12\"",
    ])
    func malformedTextIsRefused(_ text: String) {
        #expect(throws: JSONError.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test func invalidUTF8InAStringIsRefused() {
        #expect(throws: JSONError.self) { try JSONValue.parse([0x22, 0xff, 0xfe, 0x22]) }
    }

    @Test func nestingIsBounded() throws {
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(throws: JSONError.self) { try JSONValue.parse(Array(deep.utf8)) }
        let fine = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        _ = try JSONValue.parse(Array(fine.utf8))
    }

    @Test func quotedTextParsesBackToItself() throws {
        for text in ["", "plain", "q\"b\\", "line\nfeed\r\t", "\u{1}\u{1f}", "é 😀"] {
            #expect(try JSONValue.parse(Array(JSONValue.quoted(text).utf8)).string == text)
        }
        #expect(JSONValue.quoted("\u{1}") == "\"\\u0001\"")
    }
}
