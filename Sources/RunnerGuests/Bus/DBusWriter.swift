import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Little-endian D-Bus marshalling.
package struct DBusWriter {
    private(set) var bytes: [UInt8] = []

    mutating func align(_ n: Int) {
        while bytes.count % n != 0 { bytes.append(0) }
    }

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func uint32(_ value: UInt32) {
        align(4)
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    mutating func uint64(_ value: UInt64) {
        align(8)
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    mutating func bool(_ value: Bool) { uint32(value ? 1 : 0) }

    mutating func string(_ value: String) {
        let utf8 = Array(value.utf8)
        uint32(UInt32(utf8.count))
        bytes += utf8 + [0]
    }

    mutating func signature(_ value: String) {
        bytes.append(UInt8(value.utf8.count))
        bytes += Array(value.utf8) + [0]
    }

    /// An array whose elements align to `alignment`: the length excludes the padding before
    /// the first element.
    mutating func array(alignment: Int, _ elements: (inout DBusWriter) -> Void) {
        uint32(0)
        let lengthOffset = bytes.count - 4
        align(alignment)
        let start = bytes.count
        elements(&self)
        let length = UInt32(bytes.count - start).littleEndian
        withUnsafeBytes(of: length) { raw in
            for index in 0..<4 { bytes[lengthOffset + index] = raw[index] }
        }
    }

    mutating func structure(_ fields: (inout DBusWriter) -> Void) {
        align(8)
        fields(&self)
    }

    mutating func variant(_ signature: String, _ value: (inout DBusWriter) -> Void) {
        self.signature(signature)
        value(&self)
    }

    /// A header field: `(yv)`.
    mutating func field(_ code: UInt8, _ signature: String, _ value: (inout DBusWriter) -> Void) {
        structure { field in
            field.byte(code)
            field.variant(signature, value)
        }
    }

    /// A property for `StartTransientUnit`: `(sv)`.
    mutating func property(_ name: String, _ signature: String, _ value: (inout DBusWriter) -> Void) {
        structure { property in
            property.string(name)
            property.variant(signature, value)
        }
    }
}
