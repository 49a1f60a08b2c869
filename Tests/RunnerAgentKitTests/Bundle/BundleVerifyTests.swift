import ArgumentParser
import RunnerAgentKit
import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Builds bundles the way `runner-build bundle` lays them out (MANIFEST.json first, then the
/// files), with optional tampering between the manifest and the archive.
struct BundleFixture {
    var files: [String: (content: String, mode: UInt32)] = [
        "bin/runner-agent": ("#!/bin/sh\necho agent\n", 0o755),
        "runner.service": ("[Unit]\nDescription=runner\n", 0o644),
        "bootstrap.sh": ("#!/bin/sh\nexit 0\n", 0o755),
    ]
    /// Files the archive holds beyond the manifest's.
    var extra: [String: String] = [:]
    /// Manifest entries whose file the archive lacks.
    var missing: Set<String> = []
    /// Archive contents that differ from what the manifest says (same size).
    var altered: [String: String] = [:]
    /// Archive modes that differ from the manifest's.
    var alteredModes: [String: UInt32] = [:]
    var version = "v1.2"

    func manifest() throws -> BundleManifest {
        BundleManifest(
            bundleVersion: try BundleVersion(version), arch: .x86_64, sourceCommit: nil,
            files: files.map { path, file in
                BundleManifest.File(
                    path: path, size: Int64(file.content.utf8.count), mode: file.mode,
                    sha256: SHA256Digest.hex(of: Array(file.content.utf8)))
            })
    }

    @discardableResult
    func write(to path: String) throws -> BundleManifest {
        let manifest = try manifest()
        var members = [ArchiveMember(path: "MANIFEST.json", content: .bytes(try manifest.encoded()))]
        for (name, file) in files where !missing.contains(name) {
            let content = altered[name] ?? file.content
            members.append(
                ArchiveMember(
                    path: name, content: .bytes(Array(content.utf8)), permissions: alteredModes[name] ?? file.mode))
        }
        for (name, content) in extra {
            members.append(ArchiveMember(path: name, content: .bytes(Array(content.utf8))))
        }
        try ReproducibleArchive.write(
            members, to: path, options: .init(leadingPaths: ["MANIFEST.json"]), replaceExisting: true)
        return manifest
    }
}

@Suite struct BundleVerifyTests {
    @Test func goodBundleVerifiesAndUnpacks() async throws {
        try await withTemporaryDirectory("verify") { dir in
            let bundle = dir.appending("b.tar.gz")
            let manifest = try BundleFixture().write(to: bundle)
            let digest = try SHA256Digest.hex(ofFile: bundle)
            #expect(
                try BundleVerifier.verify(bundle: bundle, expectedSHA256: digest, scratch: dir.appending("s"))
                    == manifest)
            #expect(
                try BundleVerifier.verify(
                    bundle: bundle, expectedSHA256: digest.uppercased(), scratch: dir.appending("s")) == manifest)
            #expect(FilePaths.entries(of: dir.path) == ["b.tar.gz"], "verify leaves nothing behind")

            let target = dir.appending("releases/v1.2")
            try BundleVerifier.unpack(bundle: bundle, into: target, expectedSHA256: digest, replaceExisting: false)
            #expect(FilePaths.entries(of: target) == ["MANIFEST.json", "bin", "bootstrap.sh", "runner.service"])
            #expect(fileMode(target + "/bin/runner-agent") == 0o755)
            #expect(fileMode(target + "/runner.service") == 0o644)
            #expect(fileMode(target) == 0o755)

            let again = try #require(throws: RunnerError.self) {
                try BundleVerifier.unpack(bundle: bundle, into: target, expectedSHA256: nil, replaceExisting: false)
            }
            #expect(again.code == .alreadyExists)
            try BundleVerifier.unpack(bundle: bundle, into: target, expectedSHA256: nil, replaceExisting: true)
            #expect(FilePaths.entries(of: dir.appending("releases")) == ["v1.2"])
        }
    }

    static let tampered: [(String, BundleFixture, String, String)] = {
        var changed = BundleFixture()
        changed.altered["runner.service"] = "[Unit]\nDescription=runneR\n"
        var extra = BundleFixture()
        extra.extra["bin/backdoor"] = "#!/bin/sh\n"
        var missing = BundleFixture()
        missing.missing = ["bootstrap.sh"]
        var mode = BundleFixture()
        mode.alteredModes["runner.service"] = 0o755
        var grown = BundleFixture()
        grown.altered["bootstrap.sh"] = "#!/bin/sh\nexit 0\nrm -rf /\n"
        return [
            ("one byte changed", changed, "runner.service", "sha256"),
            ("extra file", extra, "bin/backdoor", "not listed"),
            ("missing file", missing, "bootstrap.sh", "missing"),
            ("mode changed", mode, "runner.service", "mode"),
            ("size changed", grown, "bootstrap.sh", "bytes"),
        ]
    }()

    @Test(arguments: tampered)
    func tamperedBundleIsRefused(_ name: String, _ fixture: BundleFixture, _ entry: String, _ problem: String)
        async throws
    {
        try await withTemporaryDirectory("tamper") { dir in
            let bundle = dir.appending("b.tar.gz")
            try fixture.write(to: bundle)
            let error = try #require(throws: RunnerError.self) {
                try BundleVerifier.verify(bundle: bundle, expectedSHA256: nil, scratch: dir.appending("s"))
            }
            #expect(error.code == .integrity, "\(name)")
            #expect(error.input == "\(bundle): \(entry)", "\(name)")
            #expect(error.problem.contains(problem), "\(name): \(error.problem)")
            // Unpack refuses too and leaves an existing release as it was.
            let target = dir.appending("release")
            try AtomicFile.write("old", to: target + "/keep")
            #expect(throws: RunnerError.self) {
                try BundleVerifier.unpack(bundle: bundle, into: target, expectedSHA256: nil, replaceExisting: true)
            }
            #expect(FilePaths.entries(of: target) == ["keep"])
            #expect(FilePaths.entries(of: dir.path) == ["b.tar.gz", "release"])
        }
    }

    @Test func wrongDigestAndChangedArchiveBytesAreRefused() async throws {
        try await withTemporaryDirectory("digest") { dir in
            let bundle = dir.appending("b.tar.gz")
            try BundleFixture().write(to: bundle)
            let wrong = String(repeating: "0", count: 64)
            let error = try #require(throws: RunnerError.self) {
                try BundleVerifier.verify(bundle: bundle, expectedSHA256: wrong, scratch: dir.appending("s"))
            }
            #expect(error.code == .integrity)
            #expect(error.input == bundle)
            let malformed = try #require(throws: RunnerError.self) {
                try BundleVerifier.verify(bundle: bundle, expectedSHA256: "xyz", scratch: dir.appending("s"))
            }
            #expect(malformed.code == .invalidInput)

            // One byte of the compressed stream flipped: the gzip CRC (or the tar) catches it.
            var bytes = try FilePaths.read(bundle)
            bytes[bytes.count / 2] ^= 0x01
            try AtomicFile.write(bytes, to: bundle)
            let flipped = try #require(throws: RunnerError.self) {
                try BundleVerifier.verify(bundle: bundle, expectedSHA256: nil, scratch: dir.appending("s"))
            }
            #expect([.integrity, .unsafeInput].contains(flipped.code))
            #expect(flipped.input.hasPrefix(bundle))
            #expect(FilePaths.entries(of: dir.path) == ["b.tar.gz"])
        }
    }

    @Test func notABundleAndHostileBundlesAreRefused() async throws {
        try await withTemporaryDirectory("notbundle") { dir in
            let plain = dir.appending("plain.tar.gz")
            try ReproducibleArchive.write([ArchiveMember(path: "x", content: .bytes([1]))], to: plain, options: .init())
            let noManifest = try #require(throws: RunnerError.self) {
                try BundleVerifier.verify(bundle: plain, expectedSHA256: nil, scratch: dir.appending("s"))
            }
            #expect(noManifest.problem.contains("MANIFEST.json"))

            let hostile = dir.appending("hostile.tar.gz")
            try ArchiveFile.write(to: hostile, compression: .defaultGzip, replaceExisting: false) {
                (writer) throws(ArchiveError) in
                try writer.write(
                    ArchiveEntry(path: "../../etc/cron.d/x", kind: .regularFile, permissions: 0o644), contents: [1])
            }
            let refused = try #require(throws: RunnerError.self) {
                try BundleVerifier.verify(bundle: hostile, expectedSHA256: nil, scratch: dir.appending("s"))
            }
            #expect(refused.code == .unsafeInput)
            #expect(refused.input == "\(hostile): ../../etc/cron.d/x")

            let missing = try #require(throws: RunnerError.self) {
                try BundleVerifier.verify(
                    bundle: dir.appending("nope.tar.gz"), expectedSHA256: nil, scratch: dir.appending("s"))
            }
            #expect(missing.code == .notFound)

            let badManifest = dir.appending("bad.tar.gz")
            try ReproducibleArchive.write(
                [ArchiveMember(path: "MANIFEST.json", content: .bytes(Array("{\"formatVersion\": 1}".utf8)))],
                to: badManifest, options: .init())
            let invalid = try #require(throws: RunnerError.self) {
                try BundleVerifier.verify(bundle: badManifest, expectedSHA256: nil, scratch: dir.appending("s"))
            }
            #expect(invalid.input.hasSuffix("MANIFEST.json"))
        }
    }

    @Test func installReleaseUnpacksIntoTheVersionDirectoryIdempotently() async throws {
        try await withTemporaryDirectory("install") { dir in
            let bundle = dir.appending("b.tar.gz")
            let manifest = try BundleFixture().write(to: bundle)
            let unpacker = BundleUnpacker(layout: dir.layout)
            #expect(try BundleUnpacker.peekManifest(bundle) == manifest)
            let first = try unpacker.installRelease(
                bundle: bundle, expectedSHA256: try SHA256Digest.hex(ofFile: bundle))
            #expect(first.directory == dir.layout.releaseDirectory("v1.2"))
            let inode = try #require(lstatOf(first.directory)).st_ino
            let second = try unpacker.installRelease(bundle: bundle, expectedSHA256: nil)
            #expect(second.directory == first.directory)
            #expect(try #require(lstatOf(first.directory)).st_ino == inode, "a verified release is kept")
            // A damaged release directory is replaced.
            try AtomicFile.write("junk", to: first.directory + "/runner.service")
            _ = try unpacker.installRelease(bundle: bundle, expectedSHA256: nil)
            #expect(try BundleVerifier.checkTree(first.directory, bundle: bundle) == manifest)
        }
    }

    @Test func manifestJSONIsCanonical() throws {
        let manifest = BundleManifest(
            bundleVersion: try BundleVersion("v1.2"), arch: .aarch64, sourceCommit: "abc",
            files: [
                .init(path: "z.sh", size: 1, mode: 0o755, sha256: String(repeating: "a", count: 64)),
                .init(path: "bin/runner-agent", size: 2, mode: 0o755, sha256: String(repeating: "b", count: 64)),
            ])
        let text = String(decoding: try manifest.encoded(), as: UTF8.self)
        let expected = """
            {
              "arch" : "aarch64",
              "bundleVersion" : "v1.2",
              "files" : [
                {
                  "mode" : "0755",
                  "path" : "bin/runner-agent",
                  "sha256" : "\(String(repeating: "b", count: 64))",
                  "size" : 2
                },
                {
                  "mode" : "0755",
                  "path" : "z.sh",
                  "sha256" : "\(String(repeating: "a", count: 64))",
                  "size" : 1
                }
              ],
              "formatVersion" : 1,
              "sourceCommit" : "abc"
            }

            """
        #expect(text == expected)
        #expect(try BundleManifest.decode(try manifest.encoded(), source: "b") == manifest)
        for bad in [
            "{\"formatVersion\": 2, \"bundleVersion\": \"v1.2\", \"arch\": \"x86_64\", \"files\": []}",
            "{\"formatVersion\": 1, \"bundleVersion\": \"1.2\", \"arch\": \"x86_64\", \"files\": []}",
            "{\"formatVersion\": 1, \"bundleVersion\": \"v1.2\", \"arch\": \"x86_64\", \"files\": "
                + "[{\"path\": \"../x\", \"size\": 1, \"mode\": \"0644\", \"sha256\": \"\(String(repeating: "a", count: 64))\"}]}",
            "{\"formatVersion\": 1, \"bundleVersion\": \"v1.2\", \"arch\": \"x86_64\", \"files\": "
                + "[{\"path\": \"x\", \"size\": 1, \"mode\": \"4755\", \"sha256\": \"\(String(repeating: "a", count: 64))\"}]}",
        ] {
            #expect(throws: RunnerError.self) { try BundleManifest.decode(Array(bad.utf8), source: "b") }
        }
    }

    @Test func commandsValidateAndParse() throws {
        #expect(throws: (any Error).self) {
            try RunnerAgentCommand.parseAsRoot(["bundle", "verify", "b.tar.gz", "--sha256", "xyz"])
        }
        #expect(throws: (any Error).self) { try RunnerAgentCommand.parseAsRoot(["bundle", "unpack", "b.tar.gz"]) }
        let unpack = try RunnerAgentCommand.parseAsRoot(["bundle", "unpack", "b.tar.gz", "--into", "/x", "--force"])
        #expect(unpack is AgentBundleUnpackCommand)
        #expect(AgentBundleVerifyCommand.helpMessage().contains("--sha256"))
    }
}

func fileMode(_ path: String) -> UInt32? {
    lstatOf(path).map { UInt32($0.st_mode) & 0o7777 }
}
