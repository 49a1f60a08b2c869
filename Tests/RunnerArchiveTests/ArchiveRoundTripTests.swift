import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ArchiveRoundTripTests {
    static func members(in dir: TemporaryDirectory) throws -> [ArchiveMember] {
        try writeText(dir.appending("in/tool"), "#!/bin/sh\necho hi\n", mode: 0o700)
        try writeText(dir.appending("in/notes.txt"), "plain\n", mode: 0o600)
        return [
            ArchiveMember(path: "MANIFEST.json", content: .bytes(Array("{}\n".utf8))),
            ArchiveMember(path: "bin/tool", content: .file(dir.appending("in/tool"))),
            ArchiveMember(path: "share/doc/notes.txt", content: .file(dir.appending("in/notes.txt"))),
            ArchiveMember(path: "share/empty", content: .directory),
            ArchiveMember(path: "share/link", content: .symlink("doc/notes.txt")),
            ArchiveMember(path: "ünïcode-名前.txt", content: .bytes(Array("utf8\n".utf8))),
            ArchiveMember(path: "a-b", content: .bytes([1, 2, 3])),
        ]
    }

    @Test func reproducibleArchiveRoundTrips() async throws {
        try await withTemporaryDirectory("rt") { dir in
            let archive = dir.appending("out.tar.gz")
            let options = ReproducibleArchive.Options(modificationTime: 1_700_000_000, leadingPaths: ["MANIFEST.json"])
            try ReproducibleArchive.write(try Self.members(in: dir), to: archive, options: options)
            let entries = try ArchiveReader.list(archive)
            let names = try entries.map { try ArchivePath.normalized($0.path) }
            // MANIFEST.json first, then bytewise order ('-' < '/'), parents added.
            #expect(
                names == [
                    "MANIFEST.json", "a-b", "bin", "bin/tool", "share", "share/doc", "share/doc/notes.txt",
                    "share/empty", "share/link", "ünïcode-名前.txt",
                ])
            for entry in entries {
                #expect(entry.uid == 0 && entry.gid == 0)
                #expect(entry.userName == "root" && entry.groupName == "root")
                #expect(entry.modificationTime == 1_700_000_000)
            }
            let modes = Dictionary(
                uniqueKeysWithValues: try entries.map { (try ArchivePath.normalized($0.path), $0.permissions) })
            #expect(modes["bin/tool"] == 0o755)
            #expect(modes["share/doc/notes.txt"] == 0o644)
            #expect(modes["bin"] == 0o755)
            #expect(modes["share/link"] == 0o777)

            let target = dir.appending("x/extracted")
            let summary = try ArchiveExtractor.extract(archive, into: target)
            #expect(summary.entries == entries.count)
            #expect(fileText(target + "/bin/tool") == "#!/bin/sh\necho hi\n")
            #expect(fileText(target + "/ünïcode-名前.txt") == "utf8\n")
            #expect(fileText(target + "/share/link") == "plain\n")
            #expect(try #require(lstatOf(target + "/bin/tool")).st_mode & 0o7777 == 0o755)
            #expect(try #require(lstatOf(target + "/share/link")).st_mode & S_IFMT == S_IFLNK)
            #expect(try #require(lstatOf(target + "/share/doc/notes.txt")).st_mtim.tv_sec == 1_700_000_000)
            #expect(FilePaths.entries(of: dir.appending("x")) == ["extracted"])
        }
    }

    @Test(arguments: [ArchiveCompression.gzip(level: 9), .zstd(level: 3), .none])
    func sameInputsGiveSameBytesInAnyOrder(compression: ArchiveCompression) async throws {
        try await withTemporaryDirectory("det") { dir in
            let members = try Self.members(in: dir)
            var options = ReproducibleArchive.Options(
                modificationTime: 1_700_000_000, compression: compression, leadingPaths: ["MANIFEST.json"])
            try ReproducibleArchive.write(members, to: dir.appending("a.tar"), options: options)
            try ReproducibleArchive.write(members.reversed(), to: dir.appending("b.tar"), options: options)
            try ReproducibleArchive.write(members.shuffled(), to: dir.appending("c.tar"), options: options)
            let a = try FilePaths.read(dir.appending("a.tar"))
            #expect(a == (try FilePaths.read(dir.appending("b.tar"))))
            #expect(a == (try FilePaths.read(dir.appending("c.tar"))))
            if case .gzip = compression {
                #expect(Array(a[4..<8]) == [0, 0, 0, 0], "gzip header carries no timestamp")
            }
            options.modificationTime += 1
            try ReproducibleArchive.write(members, to: dir.appending("d.tar"), options: options)
            #expect(a != (try FilePaths.read(dir.appending("d.tar"))))
            let entries = try ArchiveReader.list(dir.appending("d.tar"))
            #expect(entries.count == 10)
        }
    }

    @Test func treeArchiveIsReproducibleAndRoundTrips() async throws {
        try await withTemporaryDirectory("tree") { dir in
            for index in 0..<50 {
                try writeText(dir.appending("src/d\(index % 7)/f\(index)"), String(repeating: "\(index)", count: index))
            }
            try writeText(dir.appending("src/run"), "#!/bin/sh\n", mode: 0o750)
            #expect(Glibc.symlink("d1/f1", dir.appending("src/l")) == 0)
            let options = TreeArchiver.Options(fidelity: .reproducible, modificationTime: 1_600_000_000)
            try TreeArchiver.archive(directory: dir.appending("src"), to: dir.appending("a.tar.gz"), options: options)
            // Same tree, touched: same bytes.
            #expect(utimensat(AT_FDCWD, dir.appending("src/d1/f1"), nil, 0) == 0)
            try TreeArchiver.archive(directory: dir.appending("src"), to: dir.appending("b.tar.gz"), options: options)
            #expect(try FilePaths.read(dir.appending("a.tar.gz")) == (try FilePaths.read(dir.appending("b.tar.gz"))))
            #expect(throws: ArchiveError.destinationExists(path: dir.appending("b.tar.gz"))) {
                try TreeArchiver.archive(
                    directory: dir.appending("src"), to: dir.appending("b.tar.gz"), options: options)
            }
            try ArchiveExtractor.extract(dir.appending("a.tar.gz"), into: dir.appending("out"))
            let original = try TreeArchiver.list(directory: dir.appending("src"))
            let copy = try TreeArchiver.list(directory: dir.appending("out"))
            #expect(original.map(\.path) == copy.map(\.path))
            #expect(original.map(\.size) == copy.map(\.size))
            #expect(copy.first { $0.path == "run" }?.permissions == 0o755)
            #expect(fileText(dir.appending("out/d3/f10")) == String(repeating: "10", count: 10))
        }
    }

    @Test func readsAndExtractsSingleMembers() async throws {
        try await withTemporaryDirectory("member") { dir in
            let archive = dir.appending("a.tar.gz")
            try writeRawArchive(
                archive,
                [
                    directory("./"), file("./bin/run", "#!/bin/sh\n", mode: 0o755), file("./etc/conf", "k=v\n"),
                    symlink("./latest", to: "bin/run"),
                ])
            #expect(try ArchiveReader.readMember("etc/conf", from: archive) == Array("k=v\n".utf8))
            #expect(try ArchiveReader.readMember("./etc/conf", from: archive) == Array("k=v\n".utf8))
            #expect(throws: ArchiveError.memberNotFound(archive: archive, member: "nope")) {
                try ArchiveReader.readMember("nope", from: archive)
            }
            #expect(throws: ArchiveError.self) { try ArchiveReader.readMember("latest", from: archive) }
            #expect(throws: ArchiveError.self) { try ArchiveReader.readMember("bin/run", from: archive, limit: 4) }
            try ArchiveReader.extractMember("bin/run", from: archive, to: dir.appending("run"))
            #expect(fileText(dir.appending("run")) == "#!/bin/sh\n")
            #expect(try #require(lstatOf(dir.appending("run"))).st_mode & 0o7777 == 0o755)
        }
    }

    @Test func replacesAnExistingTargetOnlyWhenAsked() async throws {
        try await withTemporaryDirectory("replace") { dir in
            let archive = dir.appending("a.tar")
            try writeRawArchive(archive, [file("new.txt", "new")], compression: .none)
            let target = dir.appending("t")
            try writeText(target + "/old.txt", "old")
            #expect(throws: ArchiveError.destinationExists(path: target)) {
                try ArchiveExtractor.extract(archive, into: target)
            }
            #expect(FilePaths.entries(of: target) == ["old.txt"])
            try ArchiveExtractor.extract(archive, into: target, replaceExisting: true)
            #expect(FilePaths.entries(of: target) == ["new.txt"])
            #expect(FilePaths.entries(of: dir.path) == ["a.tar", "t"])
        }
    }

    @Test func sourceDateEpochParsing() throws {
        #expect(try SourceDateEpoch.parse("1735689600") == 1_735_689_600)
        for bad in ["", "-1", "1.5", "abc", "12 "] {
            #expect(throws: ArchiveError.self) { try SourceDateEpoch.parse(bad) }
        }
    }

    @Test func errorsConvertToRunnerErrorsNamingTheEntry() {
        let error = ArchiveError.refused(archive: "b.tar.gz", entry: "../x", rule: .parentComponent, detail: "")
        let converted = RunnerError(archive: error)
        #expect(converted.code == .unsafeInput)
        #expect(converted.input == "b.tar.gz: ../x")
        #expect(converted.problem.contains("dot-dot"))
        #expect(converted.fix != nil)
    }
}
