import RunnerCore
import Testing

/// Bundle versions: vMAJOR.MINOR[.PATCH][-suffix], nothing else.
@Suite struct BundleVersionTests {
    @Test(arguments: ["v1.2", "v1.2.3", "v1.3-rc.1", "v10.20.30-beta-2", "v0.0"])
    func valid(_ text: String) throws {
        #expect(try BundleVersion(text).description == text)
    }

    @Test(arguments: ["1.2", "v1", "v1.2.3.4", "v1.x", "v1.2-", "v1.2-rc_1", "", "v", "v1..2", "V1.2", "v1.2 "])
    func invalid(_ text: String) throws {
        let error = try #require(throws: RunnerError.self) { try BundleVersion(text) }
        #expect(error.code == .invalidInput)
        #expect(error.input.contains(text))
        #expect(error.problem.contains("vMAJOR.MINOR[.PATCH][-suffix]"))
    }
}
