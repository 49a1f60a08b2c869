/// One rtnetlink message as bytes: what ``KernelNetlink`` sends, and the reader of what the
/// kernel answers. The layouts are the kernel's (`linux/netlink.h`, `linux/rtnetlink.h`), in
/// the host's byte order; every length read from an answer is checked before it is used.
package struct NetlinkMessage: Sendable, Hashable {
    /// `nlmsg_type`: a request (`RTM_*`) or a control message (`NLMSG_*`).
    package var type: UInt16
    /// `nlmsg_flags` (`NLM_F_*`).
    package var flags: UInt16
    /// `nlmsg_seq`.
    package var sequence: UInt32
    /// What follows the 16-byte header: the family header (`ifinfomsg`, `ifaddrmsg`, `rtmsg`)
    /// and the attributes.
    package var payload: [UInt8]

    package init(type: UInt16, flags: UInt16, sequence: UInt32 = 0, payload: [UInt8] = []) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.payload = payload
    }

    /// The header's size (`struct nlmsghdr`).
    package static let headerSize = 16

    /// The message as the kernel reads it: header, payload, padded to 4 bytes.
    package var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerSize + payload.count + 3)
        out.appendInteger(UInt32(Self.headerSize + payload.count))
        out.appendInteger(type)
        out.appendInteger(flags)
        out.appendInteger(sequence)
        out.appendInteger(UInt32(0))  // nlmsg_pid: the kernel's
        out += payload
        out.padTo4()
        return out
    }

    /// The messages of one datagram, in order. A length that runs past the datagram or below
    /// the header ends the reading there: an answer is never read beyond what arrived.
    package static func split(_ datagram: ArraySlice<UInt8>) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = datagram.startIndex
        while datagram.endIndex - offset >= headerSize {
            let length = Int(datagram.integer(at: offset, as: UInt32.self))
            guard length >= headerSize, length <= datagram.endIndex - offset else { break }
            messages.append(
                NetlinkMessage(
                    type: datagram.integer(at: offset + 4, as: UInt16.self),
                    flags: datagram.integer(at: offset + 6, as: UInt16.self),
                    sequence: datagram.integer(at: offset + 8, as: UInt32.self),
                    payload: Array(datagram[(offset + headerSize)..<(offset + length)])))
            offset += (length + 3) & ~3
        }
        return messages
    }

    // MARK: attributes

    /// One attribute (`struct rtattr`/`nlattr`): a 4-byte header, the value, padding.
    package static func attribute(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.appendInteger(UInt16(4 + value.count))
        out.appendInteger(type)
        out += value
        out.padTo4()
        return out
    }

    /// A string attribute: the text and its terminating NUL, as `ip` sends names.
    package static func attribute(_ type: UInt16, string: String) -> [UInt8] {
        attribute(type, Array(string.utf8) + [0])
    }

    /// The attributes in `bytes` (after a family header): each one's type (without the nested
    /// and byte-order flags) and value. A malformed length ends the list there.
    package static func attributes(_ bytes: ArraySlice<UInt8>) -> [(type: UInt16, value: ArraySlice<UInt8>)] {
        var out: [(type: UInt16, value: ArraySlice<UInt8>)] = []
        var offset = bytes.startIndex
        while bytes.endIndex - offset >= 4 {
            let length = Int(bytes.integer(at: offset, as: UInt16.self))
            guard length >= 4, length <= bytes.endIndex - offset else { break }
            let type = bytes.integer(at: offset + 2, as: UInt16.self) & 0x3FFF
            out.append((type, bytes[(offset + 4)..<(offset + length)]))
            offset += (length + 3) & ~3
        }
        return out
    }

    /// A string attribute's text: up to its first NUL, nil unless it is UTF-8.
    package static func string(_ value: ArraySlice<UInt8>) -> String? {
        let text = value.prefix { $0 != 0 }
        return String(validating: text, as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// Appends `value` in the host's byte order (netlink's).
    package mutating func appendInteger<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value) { append(contentsOf: $0) }
    }

    /// Appends zeros up to a multiple of 4 bytes (`NLMSG_ALIGN`, `RTA_ALIGN`).
    mutating func padTo4() {
        while count % 4 != 0 { append(0) }
    }
}

extension ArraySlice where Element == UInt8 {
    /// The integer at `offset` (an index of this slice) in the host's byte order. The caller
    /// has checked that the bytes are there.
    package func integer<T: FixedWidthInteger>(at offset: Int, as: T.Type) -> T {
        var value = T.zero
        Swift.withUnsafeMutableBytes(of: &value) { raw in
            for i in 0..<MemoryLayout<T>.size { raw[i] = self[offset + i] }
        }
        return value
    }
}
