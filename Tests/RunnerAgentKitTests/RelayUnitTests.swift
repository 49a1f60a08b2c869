import Dispatch
import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The step relay's wire: length-prefixed messages with descriptors attached.
struct RelayUnitTests {
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

/// What a step's stdout and stderr may be inside a guest.
struct StepOutputTests {
    @Test func pipesAndSocketsPassAsTheyAre() throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { ends.forEach { close($0) } }
        let output = try StepOutput.prepare(ends[1])
        #expect(output.descriptor == ends[1])
        output.finish()
        var pair: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { pair.forEach { close($0) } }
        #expect(try StepOutput.prepare(pair[0]).descriptor == pair[0])
    }

    @Test func aFileGoesThroughAPipeAndArrivesWhole() throws {
        let dir = try TemporaryDirectory("step-output")
        defer { dir.remove() }
        let path = dir.appending("out")
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        let output = try StepOutput.prepare(fd)
        #expect(output.descriptor != fd)
        var st = stat()
        #expect(fstat(output.descriptor, &st) == 0 && st.st_mode & S_IFMT == S_IFIFO)
        let chunk = [UInt8](repeating: 0x61, count: 100_000)
        // More than a pipe holds: the copy runs while we write.
        for _ in 0..<5 {
            #expect(chunk.withUnsafeBytes { write(output.descriptor, $0.baseAddress, $0.count) } == chunk.count)
        }
        output.finish()
        close(fd)
        #expect(try FilePaths.read(path).count == 500_000)
    }

    @Test func aDirectoryIsNeverHandedOver() throws {
        let fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(!StepOutput.isSafeForGuest(fd))
        let output = try StepOutput.prepare(fd)
        #expect(output.descriptor != fd)
        output.finish(timeout: 1)
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

/// The D-Bus wire format the step relay speaks with a guest's systemd.
struct SystemdBusWireTests {
    let unit = StepUnit(
        unit: "rg-0123456789ab-step-7.service", argv: ["/usr/bin/env", "--", "bash", "-e", "/__w/_temp/x.sh"],
        environment: ["CI=true", "PATH=/usr/bin:/bin"], workingDirectory: "/__w/repo", runtimeMax: 2.5)

    @Test func startTransientUnitBodyIsWellFormed() throws {
        let body = unit.startTransientUnitBody()
        var reader = DBusReader(body)
        #expect(try reader.string() == "rg-0123456789ab-step-7.service")
        #expect(try reader.string() == "fail")
        // The properties and the (empty) auxiliary units take exactly the rest.
        try reader.skip("a(sv)a(sa(sv))")
        #expect(reader.offset == body.count)
    }

    @Test func propertiesAreFoundPastValuesOfOtherTypes() throws {
        var writer = DBusWriter()
        writer.array(alignment: 8) { dict in
            dict.property("ExecStart", "a(sasb)") { value in
                value.array(alignment: 8) { list in
                    list.structure { entry in
                        entry.string("/bin/true")
                        entry.array(alignment: 4) { $0.string("/bin/true") }
                        entry.bool(false)
                    }
                }
            }
            dict.property("TimeoutStopUSec", "t") { $0.uint64(5_000_000) }
            dict.property("ExecMainCode", "i") { $0.uint32(1) }
            dict.property("Result", "s") { $0.string("exit-code") }
            dict.property("ExecMainStatus", "i") { $0.uint32(UInt32(bitPattern: 3)) }
        }
        var reader = DBusReader(writer.bytes)
        let found = try reader.properties(["ExecMainCode", "ExecMainStatus", "Result"])
        #expect(found == ["ExecMainCode": "1", "ExecMainStatus": "3", "Result": "exit-code"])
        #expect(reader.offset == writer.bytes.count)
    }

    @Test func repliesAreMatchedBySerial() throws {
        // A method return for serial 9 from systemd, body "o".
        var fields = DBusWriter()
        fields.byte(UInt8(ascii: "l"))
        fields.byte(2)
        fields.byte(1)
        fields.byte(1)
        var body = DBusWriter()
        body.string("/org/freedesktop/systemd1/job/42")
        fields.uint32(UInt32(body.bytes.count))
        fields.uint32(77)
        fields.array(alignment: 8) { list in
            list.field(5, "u") { $0.uint32(9) }
            list.field(8, "g") { $0.signature("o") }
        }
        fields.align(8)
        var descriptors: [Int32] = []
        let message = try SystemdBus.parse(fields.bytes + body.bytes, descriptors: &descriptors)
        #expect(message.type == SystemdBus.Message.methodReturn)
        #expect(message.replySerial == 9)
        #expect(message.signature == "o")
        var reader = DBusReader(message.body)
        #expect(try reader.string() == "/org/freedesktop/systemd1/job/42")
    }

    @Test func truncatedMessagesAreRefused() {
        var descriptors: [Int32] = []
        #expect(throws: RunnerError.self) {
            try SystemdBus.parse([0x6c, 2, 1, 1, 0xff, 0, 0, 0], descriptors: &descriptors)
        }
    }

    @Test(arguments: [
        ("rg-0123456789ab-step-7.service", "/org/freedesktop/systemd1/unit/rg_2d0123456789ab_2dstep_2d7_2eservice"),
        ("a.b", "/org/freedesktop/systemd1/unit/a_2eb"),
    ])
    func unitObjectPaths(unit: String, path: String) {
        #expect(SystemdBus.unitPath(unit) == path)
    }

    @Test(arguments: [
        ("0 0 4294967295\n", UInt32(0)),
        ("         0 2147352576      65536\n", UInt32(2_147_352_576)),
        ("1 100000 65535\n0 4242 1\n", UInt32(4242)),
        ("1 100000 65535\n", nil),
        ("", nil),
    ])
    func guestRootIsWhatTheMapGivesZero(map: String, expected: UInt32?) {
        #expect(GuestBus.hostID(mappedToRoot: map) == expected)
    }

    @Test func theRelayIsStartedOutsideTheHelperTreeWithAFreshEnvironment() {
        let command = GuestRelay.command(
            executable: "/a/runner-agent", name: "rg-0123456789ab", uid: 1001, layoutRoot: "/",
            workOwner: (1001, 1002))
        #expect(command.argv == ["/a/runner-agent", "relay", "rg-0123456789ab", "--uid", "1001"])
        #expect(command.clearsEnvironment)
        #expect(command.environment["RUNNER_WORK_OWNER"] == "1001:1002")
        #expect(command.environment["RUNNER_HOST_ROOT"] == nil)
        #expect(!command.environment.keys.contains { $0.hasPrefix("SUDO_") })
        let test = GuestRelay.command(
            executable: "/a/runner-agent", name: "rg-0123456789ab", uid: 0, layoutRoot: "/tmp/t", workOwner: nil)
        #expect(test.environment["RUNNER_HOST_ROOT"] == "/tmp/t")
    }
}

/// The relay refuses a caller that came through sudo.
@Suite struct RelayCallerTests {
    @Test(arguments: ["SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND"])
    func aSudoVariableIsRefused(_ variable: String) {
        #expect(throws: RunnerError.self) {
            try RelayCommand.checkCaller { $0 == variable ? "1001" : nil }
        }
    }

    @Test func aCleanEnvironmentIsServed() throws {
        try RelayCommand.checkCaller { _ in nil }
    }
}
