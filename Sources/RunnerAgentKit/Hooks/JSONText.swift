import FoundationEssentials
import Logging
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// A small JSON writer for the response (strings, bools, arrays, objects), keys sorted.
enum JSONText {
    static func encode(_ value: Any) -> String {
        switch value {
        case let string as String: return quote(string)
        case let bool as Bool: return bool ? "true" : "false"
        case let int as Int: return String(int)
        case let array as [Any]: return "[" + array.map(encode).joined(separator: ",") + "]"
        case let object as [String: Any]:
            return "{" + object.keys.sorted().map { quote($0) + ":" + encode(object[$0]!) }.joined(separator: ",") + "}"
        default: return "null"
        }
    }

    static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
