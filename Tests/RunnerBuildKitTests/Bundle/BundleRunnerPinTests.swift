import ArgumentParser
import RunnerArchive
import RunnerBuildKit
import RunnerCore
import RunnerTestSupport
import Testing

/// `runner-build bundle --runner-version/--runner-sha256`: the pin goes into MANIFEST.json.
@Suite struct BundleRunnerPinTests {
    @Test func theBuilderWritesThePinIntoTheManifest() async throws {
        try await withTemporaryDirectory("pin") { dir in
            var request = try inputs(dir)
            let pin = RunnerPackagePin(version: "2.336.0", sha256: String(repeating: "f", count: 64))
            request.runner = pin
            let output = try BundleBuilder().build(request)
            let manifest = try BundleManifest.decode(
                try ArchiveReader.readMember("MANIFEST.json", from: output.path), source: output.path)
            #expect(manifest.runner == pin)
            #expect(output.manifest.runner == pin)
            // Without a pin the bundle is byte for byte what it was before pins existed.
            let unpinned = try BundleBuilder().build(try inputs(dir, out: "other"))
            #expect(unpinned.manifest.runner == nil)
            #expect(unpinned.sha256 != output.sha256)
        }
    }

    @Test func theCommandTakesAVersionAndADigest() throws {
        let hex = String(repeating: "a", count: 64)
        let base = ["--version", "v1.2", "--agent", "a"]
        #expect(throws: Never.self) {
            try BuildBundleCommand.parse(base + ["--runner-version", "2.336.0", "--runner-sha256", hex])
        }
        #expect(throws: Never.self) { try BuildBundleCommand.parse(base + ["--runner-version", "2.336.0"]) }
        for bad in [
            ["--runner-sha256", hex], ["--runner-version", "v2.336.0"],
            ["--runner-version", "2.336.0", "--runner-sha256", "abc"],
        ] {
            #expect(throws: (any Error).self, "\(bad)") { try BuildBundleCommand.parse(base + bad) }
        }
    }
}
