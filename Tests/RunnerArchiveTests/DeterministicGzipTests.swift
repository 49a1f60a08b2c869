import RunnerArchive
import RunnerCore
import RunnerSystem
import Testing

@Suite struct DeterministicGzipTests {
    /// Arbitrary but fixed text (gunzip's output is read back as UTF-8), part of it repetitive.
    static let input: [UInt8] = {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n ".utf8)
        var state: UInt32 = 2_463_534_242
        var bytes = Array("user-data: ".utf8) + Array(repeating: UInt8(ascii: "x"), count: 4096)
        for _ in 0..<65_536 {
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            bytes.append(alphabet[Int(state % UInt32(alphabet.count))])
        }
        return bytes
    }()

    @Test func sameBytesInSameBytesOutWithoutTimestampOrName() throws {
        let first = try DeterministicGzip.compress(Self.input, name: "user-data")
        #expect(try DeterministicGzip.compress(Self.input, name: "other") == first)
        #expect(Array(first.prefix(3)) == [0x1F, 0x8B, 8])
        #expect(first[3] == 0, "no FNAME or other flags")
        #expect(Array(first[4..<8]) == [0, 0, 0, 0], "no timestamp")
    }

    @Test(arguments: [1, 6, 9])
    func gunzipGivesTheInputBack(level: Int) async throws {
        let compressed = try DeterministicGzip.compress(Self.input, level: level)
        let result = try await SystemCommandRunner().run(
            Command("gzip", ["-dc"]), input: compressed, output: .captured)
        #expect(result.status.isSuccess)
        #expect(Array(result.standardOutput.utf8) == Self.input)
    }

    @Test func emptyInput() throws {
        let compressed = try DeterministicGzip.compress([])
        #expect(Array(compressed.prefix(2)) == [0x1F, 0x8B])
    }

    @Test(arguments: [0, 10])
    func levelOutOfRangeIsRefused(level: Int) {
        #expect(throws: ArchiveError.self) { try DeterministicGzip.compress([1], level: level) }
    }
}
