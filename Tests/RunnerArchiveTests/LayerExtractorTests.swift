import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// OCI layer rules on temporary directories: whiteouts, opaque directories (wherever the
/// marker stands), replacements, hard links, compressions, and escapes.
@Suite struct LayerExtractorTests {
    /// No owners: runs as any user.
    let policy = LayerPolicy(applyOwnership: false)

    func apply(
        _ dir: TemporaryDirectory, _ layers: [[(ArchiveEntry, [UInt8])]], compression: ArchiveCompression = .defaultGzip
    )
        throws -> String
    {
        let root = dir.appending("root")
        try FilePaths.createDirectory(root)
        for (number, entries) in layers.enumerated() {
            let layer = dir.appending("layer\(number).tar")
            try writeRawArchive(layer, entries, compression: compression)
            try LayerExtractor.apply(layer, onto: root, policy: policy)
        }
        return root
    }

    func names(_ path: String) -> [String] { FilePaths.entries(of: path).sorted() }

    @Test func whiteoutsDeleteLowerEntriesAndAreNeverCreated() async throws {
        try await withTemporaryDirectory("layers") { dir in
            let root = try apply(
                dir,
                [
                    [
                        directory("etc"), file("etc/keep", "k"), file("etc/gone", "g"), directory("var/lib/x"),
                        file("var/lib/x/y"),
                    ],
                    [file("etc/.wh.gone", ""), file("var/lib/.wh.x", ""), file(".wh.nothing-here", "")],
                ])
            #expect(names(root + "/etc") == ["keep"])
            #expect(names(root + "/var/lib") == [])
            #expect(!FilePaths.exists(root + "/.wh.nothing-here"))
        }
    }

    @Test func opaqueDirectoriesKeepOnlyTheirOwnLayerWhereverTheMarkerStands() async throws {
        try await withTemporaryDirectory("layers") { dir in
            let root = try apply(
                dir,
                [
                    [directory("a"), file("a/old1"), directory("a/sub"), file("a/sub/old2"), file("b/untouched")],
                    // The marker comes after entries of the same layer: they stay, lower ones go.
                    [file("a/new1", "n"), directory("a/sub"), file("a/sub/new2"), file("a/.wh..wh..opq", "")],
                ])
            #expect(names(root + "/a") == ["new1", "sub"])
            #expect(names(root + "/a/sub") == ["new2"])
            #expect(names(root + "/b") == ["untouched"])
            #expect(fileText(root + "/a/new1") == "n")
        }
    }

    @Test func replacementsBetweenFilesDirectoriesAndLinks() async throws {
        try await withTemporaryDirectory("layers") { dir in
            let root = try apply(
                dir,
                [
                    [
                        directory("d"), file("d/inner"), file("f", "old"), hardlink("f2", to: "f"),
                        symlink("s", to: "d"),
                    ],
                    [file("d", "now a file"), directory("f"), file("f/inside"), file("s", "no longer a link")],
                ])
            #expect(fileText(root + "/d") == "now a file")
            #expect(names(root + "/f") == ["inside"])
            // The hard link of the lower layer keeps the old content: files are never written into.
            #expect(fileText(root + "/f2") == "old")
            #expect(fileText(root + "/s") == "no longer a link")
        }
    }

    @Test func hardLinksAndZstdAndUncompressedLayers() async throws {
        for compression in [ArchiveCompression.zstd(level: 3), .none] {
            try await withTemporaryDirectory("layers") { dir in
                let root = try apply(
                    dir, [[file("bin/busybox", "bb", mode: 0o755), hardlink("bin/sh", to: "bin/busybox")]],
                    compression: compression)
                let a = try #require(lstatOf(root + "/bin/busybox"))
                let b = try #require(lstatOf(root + "/bin/sh"))
                #expect(a.st_ino == b.st_ino)
            }
        }
    }

    @Test func parentsThroughLowerSymlinksStayInTheTree() async throws {
        try await withTemporaryDirectory("layers") { dir in
            let outside = dir.appending("outside")
            try FilePaths.createDirectory(outside)
            let root = try apply(
                dir,
                [
                    [
                        symlink("bin", to: "usr/bin"), directory("usr/bin"), symlink("evil", to: outside),
                        symlink("up", to: "../../../.."),
                    ],
                    [file("bin/tool", "t"), file("up/canary2", "y")],
                ])
            // Resolved as the guest would: inside the tree.
            #expect(fileText(root + "/usr/bin/tool") == "t")
            #expect(fileText(root + "/canary2") == "y")
            #expect(!FilePaths.exists(dir.appending("canary2")))
            // An absolute link to a host directory resolves inside the tree, where it does not
            // exist: refused, and the host directory stays empty.
            let layer = dir.appending("evil.tar")
            try writeRawArchive(layer, [file("evil/canary", "x")])
            #expect(throws: ArchiveError.self) { try LayerExtractor.apply(layer, onto: root, policy: policy) }
            #expect(names(outside) == [])
        }
    }

    @Test(arguments: [
        [file("../escape")], [file("/abs")], [hardlink("x", to: "../../etc/passwd")],
        [hardlink("x", to: "missing")], [directory("d"), hardlink("x", to: "d")],
    ])
    func escapesAreRefused(_ entries: [(ArchiveEntry, [UInt8])]) async throws {
        try await withTemporaryDirectory("layers") { dir in
            #expect(throws: ArchiveError.self) { try apply(dir, [entries]) }
            #expect(!FilePaths.exists(dir.appending("escape")))
        }
    }

    @Test func devicesAreSkippedAndOwnersOutsideTheRangeRefused() async throws {
        guard geteuid() == 0 else { return }
        try await withTemporaryDirectory("layers") { dir in
            let root = dir.appending("root")
            try FilePaths.createDirectory(root)
            var disk = ArchiveEntry(path: "dev/sda", kind: .blockDevice, permissions: 0o660)
            disk.deviceMajor = 8
            var owned = ArchiveEntry(path: "home/u/f", kind: .regularFile, permissions: 0o4755)
            owned.uid = 1000
            owned.gid = 1000
            let layer = dir.appending("l.tar")
            try writeRawArchive(layer, [(disk, []), (owned, Array("x".utf8))])
            let shifted = LayerPolicy(applyOwnership: true, idBase: 2_147_352_576, idCount: 65536)
            let summary = try LayerExtractor.apply(layer, onto: root, policy: shifted)
            #expect(summary.skippedDevices == 1)
            #expect(!FilePaths.exists(root + "/dev/sda"))
            let st = try #require(lstatOf(root + "/home/u/f"))
            #expect(st.st_uid == 2_147_352_576 + 1000)
            #expect(st.st_mode & 0o7777 == 0o4755)
            var far = ArchiveEntry(path: "far", kind: .regularFile, permissions: 0o644)
            far.uid = 70000
            try writeRawArchive(layer, [(far, [])])
            #expect(throws: ArchiveError.self) { try LayerExtractor.apply(layer, onto: root, policy: shifted) }
        }
    }
}
