import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Full fidelity (what root file systems need), as root: ownership, setuid, sticky, devices,
/// fifos, hardlinks, absolute symlinks and a file capability survive archive → extract with the
/// `.rootfs` policy; the default policy refuses the same archive.
@Suite(.serialized) struct ArchiveFidelityTests {
    static let epoch: Int64 = 1_700_000_000

    static func makeTree(_ root: String) async throws {
        try writeText(root + "/bin/ping", "ping", mode: 0o755)
        #expect(chmod(root + "/bin/ping", 0o4755) == 0)
        try writeText(root + "/bin/a", "same inode")
        #expect(link(root + "/bin/a", root + "/bin/b") == 0)
        try writeText(root + "/usr/bin/capped", "cap", mode: 0o755)
        _ = try await output("setcap", ["cap_net_raw+ep", root + "/usr/bin/capped"])
        try FilePaths.createDirectory(root + "/dev")
        #expect(mknod(root + "/dev/null", S_IFCHR | 0o666, runnerMakedev(1, 3)) == 0)
        #expect(chmod(root + "/dev/null", 0o666) == 0)
        try FilePaths.createDirectory(root + "/run")
        #expect(mkfifo(root + "/run/fifo", 0o600) == 0)
        try writeText(root + "/home/u/private", "secret", mode: 0o640)
        #expect(chown(root + "/home/u/private", 1234, 5678) == 0)
        #expect(chown(root + "/home/u", 1234, 5678) == 0)
        #expect(chmod(root + "/home/u", 0o750) == 0)
        try FilePaths.createDirectory(root + "/tmp")
        #expect(chmod(root + "/tmp", 0o1777) == 0)
        try FilePaths.createDirectory(root + "/etc")
        #expect(symlink("/usr/bin/capped", root + "/etc/alt") == 0)
        // One mtime before the clamp (kept), the rest now (clamped to the epoch).
        var old = [timespec(tv_sec: 1_000_000_000, tv_nsec: 5), timespec(tv_sec: 1_000_000_000, tv_nsec: 5)]
        #expect(utimensat(AT_FDCWD, root + "/bin/a", &old, 0) == 0)
    }

    @Test(.requiresRoot, .requires("setcap"), .requires("getcap"))
    func fullFidelityRoundTripAsRoot() async throws {
        try await withTemporaryDirectory("fidelity") { dir in
            let source = dir.appending("src")
            try await Self.makeTree(source)
            let archive = dir.appending("rootfs.tar.zst")
            let options = TreeArchiver.Options(
                fidelity: .full, modificationTime: Self.epoch, compression: .zstd(level: 3))
            try TreeArchiver.archive(directory: source, to: archive, options: options)

            let entries = try ArchiveReader.list(archive)
            #expect(entries.first?.path == "./")
            let byPath = Dictionary(uniqueKeysWithValues: entries.map { ($0.path, $0) })
            #expect(byPath["./bin/b"]?.kind == .hardlink)
            #expect(byPath["./bin/b"]?.linkTarget == "./bin/a")
            #expect(byPath["./bin/a"]?.modificationTime == 1_000_000_000)
            #expect(byPath["./bin/ping"]?.modificationTime == Self.epoch)
            #expect(byPath["./dev/null"]?.kind == .characterDevice)
            #expect(byPath["./dev/null"]?.deviceMajor == 1 && byPath["./dev/null"]?.deviceMinor == 3)
            let capability = byPath["./usr/bin/capped"]?.extendedAttributes.map(\.name)
            #expect(capability == ["security.capability"])
            #expect(entries.map(\.path) == entries.map(\.path).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })

            // The default policy refuses it (setuid, devices...).
            #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(archive, into: dir.appending("plain")) }
            #expect(!FilePaths.exists(dir.appending("plain")))

            let target = dir.appending("out")
            try ArchiveExtractor.extract(archive, into: target, policy: .rootfs)
            let before = try TreeArchiver.list(directory: source)
            let after = try TreeArchiver.list(directory: target)
            #expect(before.count == after.count)
            for (a, b) in zip(before, after) {
                #expect(a.path == b.path)
                #expect(a.kind == b.kind, "\(a.path)")
                #expect(a.permissions == b.permissions, "\(a.path)")
                #expect(a.uid == b.uid && a.gid == b.gid, "\(a.path)")
                #expect(a.size == b.size, "\(a.path)")
                #expect(a.linkTarget == b.linkTarget, "\(a.path)")
                #expect(a.deviceMajor == b.deviceMajor && a.deviceMinor == b.deviceMinor, "\(a.path)")
                #expect(b.modificationTime == min(a.modificationTime, Self.epoch), "\(a.path)")
            }
            let a = try #require(lstatOf(target + "/bin/a"))
            let b = try #require(lstatOf(target + "/bin/b"))
            #expect(a.st_ino == b.st_ino && a.st_nlink == 2)
            #expect(try #require(lstatOf(target + "/bin/ping")).st_mode & 0o7777 == 0o4755)
            #expect(try #require(lstatOf(target + "/tmp")).st_mode & 0o7777 == 0o1777)
            #expect(try #require(lstatOf(target)).st_mode & 0o7777 == 0o755)
            let caps = try await output("getcap", [target + "/usr/bin/capped"])
            #expect(caps.contains("cap_net_raw=ep"))

            // Archiving the extracted tree again gives the same bytes.
            try TreeArchiver.archive(directory: target, to: dir.appending("again.tar.zst"), options: options)
            #expect(try FilePaths.read(archive) == (try FilePaths.read(dir.appending("again.tar.zst"))))
        }
    }
}

/// `makedev(3)` for the tests.
func runnerMakedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
    dev_t(
        (UInt64(major & 0xfff) << 8) | (UInt64(major & ~0xfff) << 32) | UInt64(minor & 0xff)
            | (UInt64(minor & ~0xff) << 12))
}
