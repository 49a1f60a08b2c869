import RunnerCore
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Files and digests")
struct FileTests {
    @Test func atomicWriteCreatesParentsAndSetsMode() throws {
        let dir = try TemporaryDirectory("atomic")
        defer { dir.remove() }
        let path = dir.appending("a/b/config.env")
        try AtomicFile.write("KEY=value\n", to: path, mode: 0o600)
        #expect(try FilePaths.read(path) == Array("KEY=value\n".utf8))
        try AtomicFile.write("KEY=other\n", to: path, mode: 0o600)
        #expect(try FilePaths.read(path) == Array("KEY=other\n".utf8))
    }

    @Test func entriesListNamesSortedWithHiddenOnesAndNothingForAMissingDirectory() throws {
        let dir = try TemporaryDirectory("entries")
        defer { dir.remove() }
        // The longest name a file system takes (255 bytes) and a UTF-8 one come back whole.
        let longest = String(repeating: "n", count: 255)
        for name in ["b", ".hidden", "a", "Z", "é"] { try AtomicFile.write("", to: dir.appending(name)) }
        let fd = creat(dir.appending(longest), 0o644)
        #expect(fd >= 0)
        close(fd)
        #expect(FilePaths.entries(of: dir.path) == [".hidden", "Z", "a", "b", longest, "é"])
        #expect(FilePaths.entries(of: dir.appending("missing")) == [])
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ])
    func sha256KnownVectors(input: String, expected: String) {
        #expect(SHA256Digest.hex(of: Array(input.utf8)) == expected)
    }

    @Test func sha256OfFileMatchesBytes() throws {
        let dir = try TemporaryDirectory("sha")
        defer { dir.remove() }
        let bytes = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try AtomicFile.write(bytes, to: dir.appending("f"))
        #expect(try SHA256Digest.hex(ofFile: dir.appending("f")) == SHA256Digest.hex(of: bytes))
    }
}
