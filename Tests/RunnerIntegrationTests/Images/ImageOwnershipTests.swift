import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerImages

#if canImport(Glibc)
    import Glibc
#endif

/// Shifting an image's owners into the guests' user-namespace range, for real, as root.
@Suite struct ImageOwnershipTests {
    static let range = GuestUserNamespace.standard

    /// A tree with every kind of entry, shifted into the range and back, by descriptor: setuid
    /// modes survive, links are not followed, a second run changes nothing, and an interrupted
    /// shift is finished by ``ImageOwnership/ensure``.
    @Test(.requiresRoot)
    func imageOwnersAreShiftedOnceAndBack() throws {
        try withTemporaryDirectoryHelper { dir in
            let version = dir.appending("version")
            let root = version + "/rootfs"
            try FilePaths.createDirectory(root + "/usr/bin")
            try FilePaths.createDirectory(root + "/home/user")
            try AtomicFile.write("#!/bin/sh\n", to: root + "/usr/bin/su", mode: 0o4755)
            chmod(root + "/usr/bin/su", 0o4755)
            try AtomicFile.write("x", to: root + "/usr/bin/wall", mode: 0o2755)
            chown(root + "/usr/bin/wall", 0, 5)
            chmod(root + "/usr/bin/wall", 0o2755)
            try AtomicFile.write("u", to: root + "/home/user/file")
            chown(root + "/home/user", 1000, 1000)
            chown(root + "/home/user/file", 1000, 1000)
            link(root + "/home/user/file", root + "/hardlink")
            mkfifo(root + "/fifo", 0o600)
            // A name that is not UTF-8.
            let odd = root + "/odd-"
            let oddPath = Array(odd.utf8CString.dropLast()) + [CChar(bitPattern: 0xff), 0]
            #expect(oddPath.withUnsafeBufferPointer { creat($0.baseAddress!, 0o644) } >= 0)
            // A link out of the tree, to a canary: never followed.
            let canary = dir.appending("canary")
            try AtomicFile.write("c", to: canary)
            symlink(canary, root + "/usr/bin/escape")

            var st = stat()
            let logger = Logger(label: "test")
            #expect(try ImageOwnership.ensure(version: version, userNamespace: Self.range, logger: logger))
            #expect(try ImageOwnership.marker(version: version) == Self.range)
            stat(root + "/usr/bin/su", &st)
            #expect(st.st_uid == Self.range.base && st.st_mode & 0o7777 == 0o4755)
            stat(root + "/usr/bin/wall", &st)
            #expect(st.st_gid == Self.range.base + 5 && st.st_mode & 0o7777 == 0o2755)
            stat(root + "/home/user/file", &st)
            #expect(st.st_uid == Self.range.base + 1000 && st.st_gid == Self.range.base + 1000)
            lstat(root + "/usr/bin/escape", &st)
            #expect(st.st_uid == Self.range.base)
            stat(canary, &st)
            #expect(st.st_uid == 0)
            lstat(root + "/fifo", &st)
            #expect(st.st_uid == Self.range.base)
            #expect(
                oddPath.withUnsafeBufferPointer { lstat($0.baseAddress!, &st) } == 0 && st.st_uid == Self.range.base)
            stat(root, &st)
            #expect(st.st_uid == Self.range.base)
            // Already there: nothing to do.
            #expect(!(try ImageOwnership.ensure(version: version, userNamespace: Self.range, logger: logger)))
            #expect(
                try ImageOwnership.shift(
                    root: root, from: GuestUserNamespace(base: 0, size: 65536), to: Self.range) == 0)

            // Interrupted: half the tree back at 0, marker still says the range; switching off
            // maps everything back, and on again finishes everything.
            chown(root + "/usr/bin/su", 0, 0)
            chmod(root + "/usr/bin/su", 0o4755)
            #expect(try ImageOwnership.ensure(version: version, userNamespace: nil, logger: logger))
            #expect(try ImageOwnership.marker(version: version) == nil)
            stat(root + "/home/user/file", &st)
            #expect(st.st_uid == 1000)
            stat(root + "/usr/bin/su", &st)
            #expect(st.st_uid == 0 && st.st_mode & 0o7777 == 0o4755)
            chown(root + "/usr/bin/su", Self.range.base, Self.range.base)  // half shifted, no marker
            chmod(root + "/usr/bin/su", 0o4755)
            #expect(try ImageOwnership.ensure(version: version, userNamespace: Self.range, logger: logger))
            stat(root + "/usr/bin/su", &st)
            #expect(st.st_uid == Self.range.base && st.st_mode & 0o7777 == 0o4755)
            stat(root + "/home/user/file", &st)
            #expect(st.st_uid == Self.range.base + 1000)

            // A version guests still boot from is not shifted under them.
            #expect(throws: RunnerError.self) {
                try ImageOwnership.ensure(version: version, userNamespace: nil, logger: logger, busy: { true })
            }
            #expect(try ImageOwnership.marker(version: version) == Self.range)
            #expect(throws: RunnerError.self) {
                try ImageOwnership.shift(
                    root: root, from: Self.range, to: GuestUserNamespace(base: 2_147_352_577, size: 65536))
            }
        }
    }
}
