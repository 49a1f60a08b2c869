import FoundationEssentials

/// JSON text for the hook inputs tests build: compact, keys sorted, `/` unescaped.
public enum TestJSON {
    public static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    /// A JSON string literal.
    public static func quote(_ text: String) -> String { encode(text) }
}
