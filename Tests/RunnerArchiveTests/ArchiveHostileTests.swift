import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A generated corpus of hostile archives: each is refused with the offending entry and rule
/// named, and the target (an existing directory with one file) is left exactly as it was, with
/// no staging directory behind.
@Suite struct ArchiveHostileTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var entries: [(ArchiveEntry, [UInt8])]
        var offending: String
        var rule: ExtractionRule
        var policy: ExtractionPolicy = .default
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        var big = ExtractionPolicy.default
        big.maxEntrySize = 10
        var total = ExtractionPolicy.default
        total.maxTotalSize = 100
        var count = ExtractionPolicy.default
        count.maxEntries = 2
        var char = ArchiveEntry(path: "dev/null", kind: .characterDevice, permissions: 0o666)
        char.deviceMajor = 1
        char.deviceMinor = 3
        var block = ArchiveEntry(path: "dev/sda", kind: .blockDevice, permissions: 0o660)
        block.deviceMajor = 8
        return [
            Case(
                name: "absolute path", entries: [file("ok"), file("/tmp/evil")], offending: "/tmp/evil",
                rule: .absolutePath),
            Case(name: "leading dot-dot", entries: [file("../evil")], offending: "../evil", rule: .parentComponent),
            Case(
                name: "inner dot-dot", entries: [directory("a"), file("a/../../evil")], offending: "a/../../evil",
                rule: .parentComponent),
            Case(
                name: "absolute symlink", entries: [symlink("etc", to: "/etc")], offending: "etc", rule: .symlinkEscape),
            Case(
                name: "relative symlink out", entries: [directory("a"), symlink("a/up", to: "../../x")],
                offending: "a/up",
                rule: .symlinkEscape),
            Case(
                name: "symlink dot-dot after a name", entries: [symlink("s", to: "sub/../..")], offending: "s",
                rule: .symlinkEscape),
            Case(
                name: "file through a symlink of the same archive",
                entries: [directory("real"), symlink("link", to: "real"), file("link/evil")], offending: "link/evil",
                rule: .throughSymlink),
            Case(
                name: "directory through a symlink", entries: [symlink("link", to: "."), directory("link/d")],
                offending: "link/d/", rule: .throughSymlink),
            Case(
                name: "symlink replaced by later entry", entries: [symlink("x", to: "y"), file("x")], offending: "x",
                rule: .duplicateEntry),
            Case(
                name: "hardlink to an absolute path", entries: [hardlink("h", to: "/etc/passwd")], offending: "h",
                rule: .hardlinkEscape),
            Case(
                name: "hardlink up", entries: [hardlink("h", to: "../outside")], offending: "h", rule: .hardlinkEscape),
            Case(
                name: "hardlink to nothing extracted", entries: [hardlink("h", to: "later"), file("later")],
                offending: "h",
                rule: .hardlinkEscape),
            Case(
                name: "hardlink to a directory", entries: [directory("d"), hardlink("h", to: "d")], offending: "h",
                rule: .hardlinkEscape),
            Case(name: "character device", entries: [(char, [])], offending: "dev/null", rule: .deviceNode),
            Case(name: "block device", entries: [(block, [])], offending: "dev/sda", rule: .deviceNode),
            Case(
                name: "fifo", entries: [(ArchiveEntry(path: "p", kind: .fifo, permissions: 0o644), [])], offending: "p",
                rule: .fifo),
            Case(name: "setuid file", entries: [file("su", mode: 0o4755)], offending: "su", rule: .setuidSetgid),
            Case(
                name: "setgid directory", entries: [directory("g", mode: 0o2775)], offending: "g/", rule: .setuidSetgid),
            Case(
                name: "file under a file", entries: [file("f"), file("f/g")], offending: "f/g", rule: .notADirectory),
            Case(
                name: "entry over the size cap", entries: [file("big", String(repeating: "b", count: 11))],
                offending: "big", rule: .entryTooLarge, policy: big),
            Case(
                name: "total over the cap",
                entries: [
                    file("one", String(repeating: "1", count: 60)), file("two", String(repeating: "2", count: 60)),
                ],
                offending: "two", rule: .totalTooLarge, policy: total),
            Case(
                name: "too many entries", entries: [file("1"), file("2"), file("3")], offending: "3",
                rule: .tooManyEntries, policy: count),
        ]
    }()

    /// Extracts `archive` onto an existing target and checks that it fails with `check`, the
    /// target keeps its one file and nothing else appeared beside it.
    static func expectRefusedAndUntouched(
        _ archive: String,
        in dir: TemporaryDirectory,
        policy: ExtractionPolicy = .default,
        _ check: (ArchiveError) -> Void
    ) throws {
        let target = dir.appending("target")
        try writeText(target + "/keep.txt", "keep")
        let before = FilePaths.entries(of: dir.path)
        do {
            try ArchiveExtractor.extract(archive, into: target, policy: policy, replaceExisting: true)
            Issue.record("extraction of \(archive) succeeded")
        } catch {
            check(error)
        }
        #expect(FilePaths.entries(of: target) == ["keep.txt"])
        #expect(fileText(target + "/keep.txt") == "keep")
        #expect(FilePaths.entries(of: dir.path) == before, "no staging directory is left behind")
        // A target that did not exist is not created either.
        let fresh = dir.appending("fresh")
        #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(archive, into: fresh, policy: policy) }
        #expect(!FilePaths.exists(fresh))
        #expect(FilePaths.entries(of: dir.path) == before)
    }

    @Test(arguments: cases)
    func refusedWithEntryAndRuleNamed(_ hostile: Case) async throws {
        try await withTemporaryDirectory("hostile") { dir in
            let archive = dir.appending("hostile.tar.gz")
            try writeRawArchive(archive, hostile.entries)
            try Self.expectRefusedAndUntouched(archive, in: dir, policy: hostile.policy) { error in
                guard case .refused(let name, let entry, let rule, _) = error else {
                    Issue.record("expected a refusal, got \(error)")
                    return
                }
                #expect(name == archive)
                #expect(entry == hostile.offending)
                #expect(rule == hostile.rule)
                let message = RunnerError(archive: error).description
                #expect(message.contains(hostile.offending) && message.contains(hostile.rule.rawValue))
            }
        }
    }

    @Test func truncatedGzipIsRefusedNamingTheEntry() async throws {
        try await withTemporaryDirectory("trunc") { dir in
            let whole = dir.appending("whole.tar.gz")
            var noise = [UInt8](repeating: 0, count: 300_000)
            var state: UInt32 = 12345
            for index in noise.indices {
                state = state &* 1_103_515_245 &+ 12345
                noise[index] = UInt8(truncatingIfNeeded: state >> 16)
            }
            try writeRawArchive(
                whole, [(ArchiveEntry(path: "data/noise.bin", kind: .regularFile, permissions: 0o644), noise)])
            let bytes = try FilePaths.read(whole)
            let archive = dir.appending("truncated.tar.gz")
            try AtomicFile.write(bytes.prefix(bytes.count / 2), to: archive)
            try FilePaths.remove(whole)
            try Self.expectRefusedAndUntouched(archive, in: dir) { error in
                guard case .library(_, let entry, _, _) = error else {
                    Issue.record("expected a libarchive failure, got \(error)")
                    return
                }
                #expect(entry == "data/noise.bin")
                #expect(RunnerError(archive: error).code == .integrity)
            }
        }
    }

    @Test(arguments: ["not an archive at all\n", ""])
    func notAnArchiveIsRefused(_ content: String) async throws {
        try await withTemporaryDirectory("notar") { dir in
            let archive = dir.appending("plain.tar.gz")
            try writeText(archive, content)
            try Self.expectRefusedAndUntouched(archive, in: dir) { error in
                #expect(error.input == archive)
                #expect(!error.problem.isEmpty)
            }
        }
    }

    /// The same attacks written by an independent tool (Python's tarfile, GNU format).
    @Test(.requires("python3"))
    func pythonTarfileCorpusIsRefused() async throws {
        try await withTemporaryDirectory("pytar") { dir in
            let script = """
                import io, sys, tarfile
                def build(path, members):
                    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
                        for info, data in members:
                            tar.addfile(info, io.BytesIO(data) if data is not None else None)
                def reg(name, data=b"x", mode=0o644):
                    info = tarfile.TarInfo(name); info.size = len(data); info.mode = mode
                    return info, data
                def link(name, target, kind):
                    info = tarfile.TarInfo(name); info.type = kind; info.linkname = target
                    return info, None
                d = sys.argv[1]
                build(d + "/dotdot.tar.gz", [reg("../../evil")])
                build(d + "/abs.tar.gz", [reg("/tmp/evil")])
                build(d + "/symdir.tar.gz", [link("tmp", "/tmp", tarfile.SYMTYPE), reg("tmp/evil")])
                build(d + "/hard.tar.gz", [link("h", "../../etc/passwd", tarfile.LNKTYPE)])
                build(d + "/suid.tar.gz", [reg("s", mode=0o4755)])
                """
            _ = try await output("python3", ["-c", script, dir.path])
            let expected: [(String, String, ExtractionRule)] = [
                ("dotdot", "../../evil", .parentComponent), ("abs", "/tmp/evil", .absolutePath),
                ("symdir", "tmp", .symlinkEscape), ("hard", "h", .hardlinkEscape), ("suid", "s", .setuidSetgid),
            ]
            for (name, entry, rule) in expected {
                try Self.expectRefusedAndUntouched(dir.appending("\(name).tar.gz"), in: dir) { error in
                    #expect(
                        error
                            == .refused(
                                archive: dir.appending("\(name).tar.gz"), entry: entry, rule: rule, detail: error.detail
                            ))
                }
            }
        }
    }

    @Test func rootfsPolicyStillRefusesEscapes() async throws {
        // Without root, ownership cannot be applied; every other rule of the policy stays.
        var policy = ExtractionPolicy.rootfs
        policy.applyOwnership = TestHost.isRoot
        try await withTemporaryDirectory("rootfs-escape") { dir in
            for (entries, rule) in [
                ([file("../x")], ExtractionRule.parentComponent), ([symlink("l", to: "../../x")], .symlinkEscape),
                ([symlink("l", to: "/"), file("l/etc/passwd")], .throughSymlink),
                ([hardlink("h", to: "/etc/shadow")], .hardlinkEscape),
                ([(ArchiveEntry(path: "sock", kind: .socket, permissions: 0o755), [UInt8]())], .socket),
            ] {
                let archive = dir.appending("a.tar")
                if entries[0].0.kind == .socket {
                    // libarchive cannot write a socket entry; the reader rule is covered by the policy tests.
                    continue
                }
                try writeRawArchive(archive, entries, compression: .none)
                try Self.expectRefusedAndUntouched(archive, in: dir, policy: policy) { error in
                    guard case .refused(_, _, let got, _) = error else {
                        Issue.record("expected a refusal, got \(error)")
                        return
                    }
                    #expect(got == rule)
                }
                try FilePaths.remove(archive)
            }
        }
    }

    @Test func symlinkRules() {
        #expect(ArchivePath.symlinkStaysInside(linkDirectory: ["a", "b"], target: "../../c", rooted: false))
        #expect(!ArchivePath.symlinkStaysInside(linkDirectory: ["a", "b"], target: "../../../c", rooted: false))
        #expect(!ArchivePath.symlinkStaysInside(linkDirectory: [], target: "/usr/bin", rooted: false))
        #expect(ArchivePath.symlinkStaysInside(linkDirectory: ["usr"], target: "/etc/alternatives/x", rooted: true))
        #expect(!ArchivePath.symlinkStaysInside(linkDirectory: ["a"], target: "b/../..", rooted: false))
        #expect(!ArchivePath.symlinkStaysInside(linkDirectory: ["a"], target: "", rooted: false))
        #expect(ArchivePath.symlinkStaysInside(linkDirectory: ["a"], target: "./b/./c", rooted: false))
    }
}

extension ArchiveError {
    /// The detail of a refusal ("" otherwise), for comparisons that ignore it.
    var detail: String {
        if case .refused(_, _, _, let detail) = self { return detail }
        return ""
    }
}
