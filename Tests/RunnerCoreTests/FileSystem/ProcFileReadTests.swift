import Testing

@testable import RunnerCore

/// `/proc` files report a size of 0: ``FilePaths/read(_:)`` must read them to EOF. The
/// installer's mounts check read `/proc/self/mountinfo` through it and, on a host with more
/// than 4 KiB of mounts, saw only the first 4 KiB: the work directory's own mount was cut off.
@Suite struct ProcFileReadTests {
    @Test func readsAProcFileToItsEnd() throws {
        // This process's memory map is tens of KiB (the test binary and its libraries).
        let maps = try FilePaths.read("/proc/self/maps")
        #expect(maps.count > 8192, "read \(maps.count) bytes")
        #expect(maps.last == UInt8(ascii: "\n"))
    }
}
