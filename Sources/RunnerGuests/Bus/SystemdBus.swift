import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A D-Bus peer connection to a systemd manager's private socket (`/run/systemd/private`,
/// connected by ``GuestBus``): just what running a step needs —
/// method calls with Unix descriptors, and the signals systemd sends to subscribed clients.
///
/// systemd-run does the same over the same socket; talking to it directly means no program of
/// the guest's runs on the host.
package final class SystemdBus {
    let fd: Int32
    /// Whether `Subscribe` was called on this connection (signals then come unasked).
    var subscribed = false
    private var serial: UInt32 = 0
    private var buffer: [UInt8] = []
    private var pendingDescriptors: [Int32] = []

    /// A received message: its header fields and body.
    struct Message {
        var type: UInt8
        var path: String?
        var interface: String?
        var member: String?
        var errorName: String?
        var replySerial: UInt32?
        var signature: String
        var body: [UInt8]

        static let methodReturn: UInt8 = 2
        static let error: UInt8 = 3
        static let signal: UInt8 = 4
    }

    /// Authenticates on a socket connected to systemd's private socket (`EXTERNAL` with `uid`,
    /// the connecting uid as the manager sees it: 0 for a guest's root, whatever host id it
    /// maps to; Unix descriptors negotiated); takes the descriptor.
    ///
    /// systemd checks the peer's credentials as they were at `connect()`, and takes only peers
    /// whose PID it can see: a guest's manager takes a socket connected from inside the guest's
    /// PID namespace (see ``GuestBus``), which we may then use from the host.
    init(connected fd: Int32, uid: uid_t) throws(RunnerError) {
        self.fd = fd
        let socketPath = "systemd's private socket"
        let uid = String(uid).utf8.map { String($0, radix: 16) }.joined()
        // All three lines in one write, as sd-bus clients send them. systemd 252's server takes
        // BEGIN only once its answers are out, before it reads on; a message that arrived
        // together with a late BEGIN would sit unread in its buffer until the next byte came
        // (a 10 s stall on the first call).
        let greeting = [0] + Array("AUTH EXTERNAL \(uid)\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n".utf8)
        guard UnixSocket.writeAll(fd, greeting),
            try readLine().hasPrefix("OK "),
            try readLine().hasPrefix("AGREE_UNIX_FD")
        else {
            close(fd)
            throw RunnerError(.commandFailed, input: socketPath, problem: "systemd refused the D-Bus authentication")
        }
    }

    deinit {
        close(fd)
        pendingDescriptors.forEach { close($0) }
    }

    private func readLine() throws(RunnerError) -> String {
        while true {
            if let end = buffer.firstIndex(of: 0x0a) {
                let line = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 1)
                return line
            }
            try fill()
        }
    }

    /// How long we wait for anything from systemd before giving up on the connection.
    static let answerTimeout = 10.0

    private func fill() throws(RunnerError) {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var ready: Int32
        repeat {
            ready = Glibc.poll(&pfd, 1, Int32(Self.answerTimeout * 1000))
        } while ready < 0 && errno == EINTR
        guard ready > 0 else {
            throw RunnerError(
                .timeout, input: "systemd", problem: "did not answer on D-Bus within \(Int(Self.answerTimeout)) s")
        }
        guard let received = UnixSocket.receiveRaw(fd, maxDescriptors: 16) else {
            throw RunnerError(.commandFailed, input: "systemd", problem: "closed the D-Bus connection")
        }
        buffer += received.bytes
        pendingDescriptors += received.descriptors
    }

    // MARK: calls

    /// Sends a method call to the manager's service; returns its serial.
    @discardableResult
    func send(
        path: String, interface: String, member: String, signature: String = "", body: [UInt8] = [],
        descriptors: [Int32] = []
    ) throws(RunnerError) -> UInt32 {
        serial += 1
        var header = DBusWriter()
        header.byte(UInt8(ascii: "l"))
        header.byte(1)  // METHOD_CALL
        header.byte(0)
        header.byte(1)
        header.uint32(UInt32(body.count))
        header.uint32(serial)
        header.array(alignment: 8) { fields in
            fields.field(1, "o") { $0.string(path) }
            fields.field(2, "s") { $0.string(interface) }
            fields.field(3, "s") { $0.string(member) }
            fields.field(6, "s") { $0.string("org.freedesktop.systemd1") }
            if !signature.isEmpty { fields.field(8, "g") { $0.signature(signature) } }
            if !descriptors.isEmpty { fields.field(9, "u") { $0.uint32(UInt32(descriptors.count)) } }
        }
        header.align(8)
        guard UnixSocket.sendRaw(fd, header.bytes + body, descriptors: descriptors) else {
            throw RunnerError(.commandFailed, input: "systemd", problem: "the D-Bus connection broke")
        }
        return serial
    }

    /// Calls a method and waits for its reply; signals that arrive meanwhile go to `onSignal`.
    func call(
        path: String, interface: String, member: String, signature: String = "", body: [UInt8] = [],
        descriptors: [Int32] = [], onSignal: (Message) -> Void = { _ in }
    ) throws(RunnerError) -> Message {
        let serial = try send(
            path: path, interface: interface, member: member, signature: signature, body: body,
            descriptors: descriptors)
        while true {
            let message = try receive()
            if message.type == Message.signal {
                onSignal(message)
                continue
            }
            guard message.replySerial == serial else { continue }
            if message.type == Message.error {
                var reader = DBusReader(message.body)
                let text = message.signature.hasPrefix("s") ? (try? reader.string()) ?? "" : ""
                throw RunnerError(
                    .commandFailed, input: "\(interface).\(member)",
                    problem: "systemd answered \(message.errorName ?? "an error"): \(text)")
            }
            return message
        }
    }

    /// Whether a message is waiting (or arrives within `timeout` seconds).
    func poll(timeout: Double, alsoWatching other: Int32? = nil) -> (bus: Bool, other: Bool) {
        if !buffer.isEmpty, (try? frameLength()) != nil { return (true, false) }
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        if let other { fds.append(pollfd(fd: other, events: Int16(POLLIN), revents: 0)) }
        let ready = Glibc.poll(&fds, nfds_t(fds.count), Int32(timeout * 1000))
        guard ready > 0 else { return (false, false) }
        return (fds[0].revents != 0, fds.count > 1 && fds[1].revents != 0)
    }

    /// The length of the first complete message in the buffer, or nil when more must be read.
    private func frameLength() throws(RunnerError) -> Int? {
        guard buffer.count >= 16 else { return nil }
        guard buffer[0] == UInt8(ascii: "l") else {
            throw RunnerError(.commandFailed, input: "systemd", problem: "sent a big-endian D-Bus message")
        }
        var reader = DBusReader(Array(buffer[4..<16]))
        let bodyLength = Int((try? reader.uint32()) ?? 0)
        _ = try? reader.uint32()
        let fieldsLength = Int((try? reader.uint32()) ?? 0)
        let headerLength = (16 + fieldsLength + 7) & ~7
        let total = headerLength + bodyLength
        guard total < 64 << 20 else {
            throw RunnerError(.commandFailed, input: "systemd", problem: "sent an oversized D-Bus message")
        }
        return buffer.count >= total ? total : nil
    }

    /// The next message (blocking).
    func receive() throws(RunnerError) -> Message {
        while true {
            if let total = try frameLength() {
                let frame = Array(buffer[..<total])
                buffer.removeFirst(total)
                return try Self.parse(frame, descriptors: &pendingDescriptors)
            }
            try fill()
        }
    }

    static func parse(_ frame: [UInt8], descriptors: inout [Int32]) throws(RunnerError) -> Message {
        var reader = DBusReader(frame)
        do {
            _ = try reader.byte()
            let type = try reader.byte()
            _ = try reader.byte()
            _ = try reader.byte()
            let bodyLength = Int(try reader.uint32())
            _ = try reader.uint32()
            var message = Message(type: type, signature: "", body: [])
            var fdCount = 0
            let fieldsEnd = Int(try reader.uint32()) + reader.offset
            while reader.offset < fieldsEnd {
                reader.align(8)
                let code = try reader.byte()
                let signature = try reader.signature()
                switch (code, signature) {
                case (1, "o"): message.path = try reader.string()
                case (2, "s"): message.interface = try reader.string()
                case (3, "s"): message.member = try reader.string()
                case (4, "s"): message.errorName = try reader.string()
                case (5, "u"): message.replySerial = try reader.uint32()
                case (8, "g"): message.signature = try reader.signature()
                case (9, "u"): fdCount = Int(try reader.uint32())
                default: try reader.skip(signature)
                }
            }
            reader.align(8)
            guard reader.offset + bodyLength <= frame.count else { throw DBusReader.Truncated() }
            message.body = Array(frame[reader.offset..<(reader.offset + bodyLength)])
            // Descriptors we do not use (systemd sends none in what we read) are closed.
            for _ in 0..<min(fdCount, descriptors.count) { close(descriptors.removeFirst()) }
            return message
        } catch {
            throw RunnerError(.commandFailed, input: "systemd", problem: "sent a D-Bus message we cannot read")
        }
    }

    /// systemd's object path for a unit (`bus_label_escape`: `_xx` for all but letters and digits).
    static func unitPath(_ unit: String) -> String {
        var label = ""
        for byte in unit.utf8 {
            let c = Character(UnicodeScalar(byte))
            if c.isASCII, c.isLetter || c.isNumber {
                label.append(c)
            } else {
                let hex = String(byte, radix: 16)
                label += "_" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return "/org/freedesktop/systemd1/unit/" + label
    }
}
