import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Little-endian D-Bus unmarshalling, with a skipper for any signature.
package struct DBusReader {
    struct Truncated: Error {}

    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func align(_ n: Int) { offset = (offset + n - 1) / n * n }

    private mutating func take(_ count: Int) throws(Truncated) -> ArraySlice<UInt8> {
        guard count >= 0, offset + count <= bytes.count else { throw Truncated() }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    mutating func byte() throws(Truncated) -> UInt8 {
        guard let byte = try take(1).first else { throw Truncated() }
        return byte
    }

    mutating func uint32() throws(Truncated) -> UInt32 {
        align(4)
        return try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func int32() throws(Truncated) -> Int32 { Int32(bitPattern: try uint32()) }

    mutating func uint64() throws(Truncated) -> UInt64 {
        align(8)
        return try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func string() throws(Truncated) -> String {
        let length = Int(try uint32())
        let text = String(decoding: try take(length), as: UTF8.self)
        _ = try take(1)
        return text
    }

    mutating func signature() throws(Truncated) -> String {
        let length = Int(try byte())
        let text = String(decoding: try take(length), as: UTF8.self)
        _ = try take(1)
        return text
    }

    /// The first complete type of `signature` and the rest.
    static func split(_ signature: Substring) throws(Truncated) -> (Substring, Substring) {
        guard let first = signature.first else { throw Truncated() }
        switch first {
        case "a":
            let (element, rest) = try split(signature.dropFirst())
            return (signature[signature.startIndex..<element.endIndex], rest)
        case "(", "{":
            let close: Character = first == "(" ? ")" : "}"
            var depth = 0
            var index = signature.startIndex
            while index < signature.endIndex {
                let c = signature[index]
                if c == "(" || c == "{" { depth += 1 }
                if c == ")" || c == "}" { depth -= 1 }
                if depth == 0 {
                    guard c == close else { throw Truncated() }
                    let end = signature.index(after: index)
                    return (signature[..<end], signature[end...])
                }
                index = signature.index(after: index)
            }
            throw Truncated()
        default:
            return (signature.prefix(1), signature.dropFirst())
        }
    }

    static func alignment(of type: Character) -> Int {
        switch type {
        case "y", "g", "v": 1
        case "n", "q": 2
        case "x", "t", "d", "(", "{": 8
        default: 4
        }
    }

    /// Skips one value of each complete type in `signature`.
    mutating func skip(_ signature: String) throws(Truncated) {
        var rest = Substring(signature)
        while !rest.isEmpty {
            let (type, remainder) = try Self.split(rest)
            try skipOne(type)
            rest = remainder
        }
    }

    private mutating func skipOne(_ type: Substring) throws(Truncated) {
        guard let first = type.first else { throw Truncated() }
        switch first {
        case "y": _ = try take(1)
        case "n", "q":
            align(2)
            _ = try take(2)
        case "b", "i", "u", "h": _ = try uint32()
        case "x", "t", "d": _ = try uint64()
        case "s", "o": _ = try string()
        case "g": _ = try signature()
        case "v": try skip(try signature())
        case "a":
            let length = Int(try uint32())
            let element = type.dropFirst()
            align(Self.alignment(of: element.first ?? "y"))
            _ = try take(length)
        case "(", "{":
            align(8)
            try skip(String(type.dropFirst().dropLast()))
        default: throw Truncated()
        }
    }

    /// Reads an `a{sv}`, keeping the values of `wanted` names that are strings or 32-bit integers.
    mutating func properties(_ wanted: Set<String>) throws(Truncated) -> [String: String] {
        var found: [String: String] = [:]
        let length = Int(try uint32())
        align(8)
        let end = offset + length
        while offset < end {
            align(8)
            let name = try string()
            let signature = try signature()
            if wanted.contains(name) {
                switch signature {
                case "s", "o": found[name] = try string()
                case "i": found[name] = String(try int32())
                case "u": found[name] = String(try uint32())
                default: try skip(signature)
                }
            } else {
                try skip(signature)
            }
        }
        return found
    }
}
