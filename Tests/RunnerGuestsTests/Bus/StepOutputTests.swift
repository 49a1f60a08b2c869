import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests

#if canImport(Glibc)
    import Glibc
#endif

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
