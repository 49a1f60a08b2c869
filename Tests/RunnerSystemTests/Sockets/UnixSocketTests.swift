import Dispatch
import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `UnixSocket`, the step relay's wire: length-prefixed messages with descriptors attached,
/// peer credentials, socket paths and a listener only its user may connect to.
@Suite struct UnixSocketTests {
    func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    @Test(arguments: [0, 1, 70_000])
    func messagesAndDescriptorsArriveIntact(size: Int) throws {
        let (a, b) = try socketPair()
        defer {
            close(a)
            close(b)
        }
        var pipeFDs: [Int32] = [-1, -1]
        try #require(pipe(&pipeFDs) == 0)
        defer { close(pipeFDs[0]) }
        let message = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // Send from a thread: a large message fills the socket buffer before it is read.
        let writeEnd = pipeFDs[1]
        let sender = BlockingThread {
            UnixSocket.send(a, message: message, descriptors: [writeEnd, writeEnd, writeEnd])
        }
        let received = try #require(UnixSocket.receive(b, limit: 1 << 20, maxDescriptors: 3))
        #expect(sender.join())
        close(pipeFDs[1])
        #expect(received.message == message)
        #expect(received.descriptors.count == 3)
        // The received descriptor is the pipe: what we write there comes out of the read end.
        var byte: UInt8 = 0x2a
        #expect(write(received.descriptors[2], &byte, 1) == 1)
        received.descriptors.forEach { close($0) }
        var back: UInt8 = 0
        #expect(read(pipeFDs[0], &back, 1) == 1)
        #expect(back == 0x2a)
        // (No check that the closed numbers are free: other tests running in parallel may
        // already have been given them.)
    }

    @Test func oversizedOrTruncatedMessagesAreRefused() throws {
        let (a, b) = try socketPair()
        defer { close(b) }
        #expect(UnixSocket.send(a, message: Array(repeating: 1, count: 100), descriptors: []))
        #expect(UnixSocket.receive(b, limit: 99, maxDescriptors: 3) == nil)
        let (c, d) = try socketPair()
        defer { close(d) }
        var partial: [UInt8] = [0, 0, 1, 0, 7, 7]  // says 256 bytes, sends 2, then ends
        #expect(write(c, &partial, partial.count) == partial.count)
        close(c)
        close(a)
        #expect(UnixSocket.receive(d, limit: 1 << 20, maxDescriptors: 3) == nil)
    }

    @Test func peerCredentialsNameUs() throws {
        let (a, b) = try socketPair()
        defer {
            close(a)
            close(b)
        }
        #expect(UnixSocket.peerUID(b) == getuid())
    }

    @Test func socketPathsMustFit() {
        #expect(UnixSocket.address("/run/runner/relay/rg-0123456789ab.sock") != nil)
        #expect(UnixSocket.address("/" + String(repeating: "x", count: 120)) == nil)
        #expect(UnixSocket.address("") == nil)
    }

    @Test func theRelayListensOnlyForItsUser() throws {
        let dir = try TemporaryDirectory("relay")
        defer { dir.remove() }
        let path = dir.appending("r.sock")
        let fd = try UnixSocket.listen(path: path, owner: getuid(), group: getgid())
        defer { close(fd) }
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        let client = try #require(UnixSocket.connect(path: path))
        close(client)
        #expect(UnixSocket.connect(path: dir.appending("missing.sock")) == nil)
    }
}

/// A joinable thread for a blocking call (the cooperative pool must not block on I/O).
final class BlockingThread: Sendable {
    private let result = Mutex<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Bool) {
        DispatchQueue.global().async {
            let value = body()
            self.result.withLock { $0 = value }
            self.done.signal()
        }
    }

    func join() -> Bool {
        done.wait()
        return result.withLock { $0 }
    }
}
