import RunnerCore
import Testing

/// The manifest `runner-build rootfs` writes beside an image archive.
@Suite struct RootfsManifestTests {
    @Test func manifestRoundTripsAndRejectsBadDigests() throws {
        let manifest = RootfsManifest(
            name: "n", version: "v", recipeDigest: "d", suite: "s", architecture: "a", variant: "minbase",
            mirror: "m", snapshot: "20250520T000000Z", sourceDateEpoch: 5, builder: "b", archive: "x.tar.zst",
            archiveSHA256: String(repeating: "a", count: 64), archiveSize: 9, packages: [])
        #expect(try RootfsManifest.decode(try manifest.encoded(), source: "m.json") == manifest)
        var bad = manifest
        bad.archiveSHA256 = "nope"
        #expect(throws: RunnerError.self) { try RootfsManifest.decode(try bad.encoded(), source: "m.json") }
        #expect(throws: RunnerError.self) { try RootfsManifest.decode(Array("{}".utf8), source: "m.json") }
    }
}
