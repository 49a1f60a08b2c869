import CRunnerSystem
import Foundation
import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Issue #10 routes 1 and 2 and the writable externals bind, performed against canaries the
/// tests own: paths the caller can touch are never followed, bind sources are mounted from the
/// checked descriptor, the ownership walk goes by descriptor with no depth limit.
@Suite struct PathRedTeamTests {
    static let owner: UInt32 = 4242

    /// A root-owned canary directory outside the work directory: `<dir>/canary` holding
    /// `b/secret` (0600), the tree a planted link would redirect the helper to.
    static func makeCanary(in dir: TemporaryDirectory, name: String = "canary") throws -> String {
        let canary = dir.appending(name)
        try FilePaths.createDirectory(canary + "/b", mode: 0o700)
        try AtomicFile.write("canary", to: canary + "/b/secret", mode: 0o600)
        try AtomicFile.write("canary", to: canary + "/canary-marker", mode: 0o600)
        return canary
    }

    /// Every entry under `path` (itself included) is owned by root, with its mode unchanged.
    static func expectUntouched(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for entry in [path, path + "/b", path + "/b/secret", path + "/canary-marker"] {
            var st = stat()
            #expect(lstat(entry, &st) == 0, "\(entry)", sourceLocation: sourceLocation)
            #expect(st.st_uid == 0 && st.st_gid == 0, "\(entry) was handed over", sourceLocation: sourceLocation)
        }
    }

    static func owner(of path: String) -> (UInt32, UInt32)? {
        var st = stat()
        return lstat(path, &st) == 0 ? (st.st_uid, st.st_gid) : nil
    }

    // MARK: the resolver

    @Test func resolverRefusesASymbolicLinkInTheMiddle() throws {
        try withTemporaryDirectoryHelper { dir in
            let anchorPath = dir.appending("anchor")
            try FilePaths.createDirectory(anchorPath + "/real/b")
            symlink("real", anchorPath + "/a")
            let anchor = try TrustedPath.openAnchor(anchorPath, layout: dir.layout)
            _ = try TrustedPath.resolve("real/b", beneath: anchor, directory: true)
            let error = #expect(throws: RunnerError.self) { try TrustedPath.resolve("a/b", beneath: anchor) }
            #expect(error?.input == anchorPath + "/a/b")
            #expect(error?.problem.contains("symbolic link") == true, "\(String(describing: error))")
        }
    }

    @Test func resolverRefusesDotDotAndAbsoluteLinks() throws {
        try withTemporaryDirectoryHelper { dir in
            let canary = dir.appending("canary")
            try FilePaths.createDirectory(canary)
            let anchorPath = dir.appending("anchor")
            try FilePaths.createDirectory(anchorPath + "/sub")
            symlink(canary, anchorPath + "/absolute")
            symlink("../../canary", anchorPath + "/sub/up")
            let anchor = try TrustedPath.openAnchor(anchorPath, layout: dir.layout)
            let dotdot = #expect(throws: RunnerError.self) {
                try TrustedPath.resolve("sub/../../canary", beneath: anchor)
            }
            #expect(dotdot?.problem.contains("..") == true)
            for path in ["absolute", "sub/up", "absolute/x"] {
                let error = #expect(throws: RunnerError.self) { try TrustedPath.resolve(path, beneath: anchor) }
                #expect(error?.input == anchorPath + "/" + path)
            }
            // Escaping through the resolver itself (a caller bypassing the lexical check) is refused too.
            let fd = runner_openat2(
                anchor.fd, "..", UInt64(O_CLOEXEC) | UInt64(RUNNER_O_PATH), 0,
                UInt64(RUNNER_RESOLVE_BENEATH | RUNNER_RESOLVE_NO_SYMLINKS))
            #expect(fd < 0 && errno == EXDEV)
        }
    }

    @Test func resolverRefusesMagicLinks() throws {
        let proc = try TrustedPath.openAnchor("/proc/\(getpid())", layout: HostLayout())
        for link in ["cwd", "root", "fd/0", "exe"] {
            let error = #expect(throws: RunnerError.self) { try TrustedPath.resolve(link, beneath: proc) }
            #expect(error?.problem.contains("symbolic link") == true, "\(link): \(String(describing: error))")
        }
    }

    @Test func resolverRefusesAFileWhereADirectoryIsExpected() throws {
        try withTemporaryDirectoryHelper { dir in
            let anchorPath = dir.appending("anchor")
            try FilePaths.createDirectory(anchorPath)
            try AtomicFile.write("x", to: anchorPath + "/file")
            let anchor = try TrustedPath.openAnchor(anchorPath, layout: dir.layout)
            _ = try TrustedPath.resolve("file", beneath: anchor)
            let notDirectory = #expect(throws: RunnerError.self) {
                try TrustedPath.resolve("file", beneath: anchor, directory: true)
            }
            #expect(notDirectory?.problem == "is not a directory")
            #expect(throws: RunnerError.self) { try TrustedPath.resolve("file/x", beneath: anchor) }
            #expect(throws: RunnerError.self) { try TrustedPath.createDirectories("file/x", beneath: anchor) }
            #expect(throws: RunnerError.self) { try TrustedPath.openAnchor(anchorPath + "/file/x", layout: dir.layout) }
        }
    }

    /// Reading a file in a directory others write: no link, FIFO or device is followed or
    /// opened, the owner is checked (what the installer needs for runner-owned files).
    @Test func regularFilesAreReadByDescriptorOnly() throws {
        try withTemporaryDirectoryHelper { dir in
            let canary = try Self.makeCanary(in: dir)
            let anchorPath = dir.appending("anchor")
            try FilePaths.createDirectory(anchorPath)
            try AtomicFile.write("token", to: anchorPath + "/.runner")
            symlink(canary + "/canary-marker", anchorPath + "/.credentials")
            #expect(mkfifo(anchorPath + "/.env", 0o600) == 0)
            let anchor = try TrustedPath.openAnchor(anchorPath, layout: dir.layout)
            let file = try TrustedPath.openRegularFile(".runner", beneath: anchor, owner: geteuid())
            #expect(try file.readAll() == Array("token".utf8))
            #expect(throws: RunnerError.self) { try TrustedPath.openRegularFile(".credentials", beneath: anchor) }
            let fifo = #expect(throws: RunnerError.self) { try TrustedPath.openRegularFile(".env", beneath: anchor) }
            #expect(fifo?.problem == "is not a regular file")
            let owner = #expect(throws: RunnerError.self) {
                try TrustedPath.openRegularFile(".runner", beneath: anchor, owner: geteuid() + 1)
            }
            #expect(owner?.problem.contains("owned by uid") == true)
            #expect(throws: RunnerError.self) {
                try TrustedPath.openRegularFile(".runner", beneath: anchor).readAll(limit: 2)
            }
        }
    }

    @Test func createDirectoriesNeverFollowsALink() throws {
        try withTemporaryDirectoryHelper { dir in
            let canary = dir.appending("canary")
            try FilePaths.createDirectory(canary)
            let anchorPath = dir.appending("anchor")
            try FilePaths.createDirectory(anchorPath)
            symlink(canary, anchorPath + "/a")
            let anchor = try TrustedPath.openAnchor(anchorPath, layout: dir.layout)
            let error = #expect(throws: RunnerError.self) {
                try TrustedPath.createDirectories("a/b/c", beneath: anchor)
            }
            #expect(error?.input == anchorPath + "/a")
            #expect(!FilePaths.exists(canary + "/b"))
            let made = try TrustedPath.createDirectories("x/y/z", beneath: anchor)
            #expect(made.isDirectory && FilePaths.exists(anchorPath + "/x/y/z"))
        }
    }

    /// The hook (run as root by tests and the bench) creates a missing volume source without
    /// following a link the runner user planted on the way.
    @Test func hookCreatesMissingSourcesWithoutFollowingLinks() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            let canary = try Self.makeCanary(in: dir)
            try FilePaths.createDirectory(layout.workDirectory)
            symlink(canary, layout.workDirectory + "/_runner_volumes")
            let policy = GuestPolicy(layout: layout)
            let manager = GuestManager(policy: policy, logger: Logger(label: "test"))
            let hook = ContainerHook(
                settings: HookSettings(), policy: policy, guests: LocalGuests(manager: manager),
                logger: Logger(label: "test"), ownerPID: getpid())
            let error = #expect(throws: RunnerError.self) {
                try hook.binds([MountVolume(source: "cache", target: "/cache")])
            }
            #expect(error?.input == layout.workDirectory + "/_runner_volumes")
            #expect(!FilePaths.exists(canary + "/cache"))
            unlink(layout.workDirectory + "/_runner_volumes")
            let binds = try hook.binds([MountVolume(source: "cache", target: "/cache")])
            #expect(binds.first?.source == layout.workDirectory + "/_runner_volumes/cache")
            var isDirectory = false
            #expect(FilePaths.exists(layout.workDirectory + "/_runner_volumes/cache", isDirectory: &isDirectory))
            #expect(isDirectory)
        }
    }

    /// A link in a directory only root can change (an admin's `/var/run → /run`) is followed
    /// when opening an anchor; the same link in a directory the runner user owns is not.
    @Test(.requiresRoot) func anchorsFollowOnlyLinksInTrustedDirectories() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            let canary = try Self.makeCanary(in: dir)
            try FilePaths.createDirectory(layout.path("/run/cache"))
            try FilePaths.createDirectory(layout.path("/var"))
            symlink("../run", layout.path("/var/run"))
            let trusted = try TrustedPath.openAnchor(layout.path("/var/run/cache"), layout: layout)
            #expect(trusted.currentPath == layout.path("/run/cache"))
            // The runner user's directory: its links are never followed, even to name an anchor.
            let runnerOwned = layout.path("/opt/actions-runner")
            try FilePaths.createDirectory(runnerOwned)
            chown(runnerOwned, Self.owner, Self.owner)
            symlink(canary, runnerOwned + "/externals")
            let error = #expect(throws: RunnerError.self) {
                try TrustedPath.openAnchor(layout.runnerExternalsDirectory, layout: layout)
            }
            #expect(error?.problem.contains("symbolic link in a directory others can write") == true)
            // And a bind below it is refused with the anchor's reason.
            let policy = GuestPolicy(layout: layout)
            #expect(throws: RunnerError.self) {
                try policy.check(GuestBind(source: layout.runnerExternalsDirectory + "/b", target: "/__e"))
            }
        }
    }

    /// An allowed root that is a file behind an admin's link (the docker socket under
    /// `/var/run → /run`) is bindable; a source in resolved form matches its root too.
    @Test func fileRootsAndResolvedSourcesAreChecked() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            try FilePaths.createDirectory(layout.path("/run"))
            try FilePaths.createDirectory(layout.path("/var"))
            try FilePaths.createDirectory(layout.workDirectory + "/repo")
            symlink("../run", layout.path("/var/run"))
            try AtomicFile.write("", to: layout.path("/run/docker.sock"))
            let policy = GuestPolicy(layout: layout, extraMountRoots: [layout.path("/var/run/docker.sock")])
            let socket = try policy.check(GuestBind(source: layout.path("/var/run/docker.sock"), target: "/s"))
            #expect(socket.descriptor?.isDirectory == false && socket.workRelative == nil)
            #expect(throws: RunnerError.self) {
                try policy.check(GuestBind(source: layout.path("/var/run/docker.sock") + "/x", target: "/s"))
            }
            // RUNNER_WORK_DIR through an admin's link; the caller names the real directory.
            symlink("var/lib/runner", layout.path("/srv"))
            let linked = GuestPolicy(layout: layout, workDirectory: layout.path("/srv/work"))
            let resolved = try #require(GuestPolicy.realPath(layout.workDirectory))
            let repo = try linked.check(GuestBind(source: resolved + "/repo", target: "/r"))
            #expect(repo.workRelative == "repo" && repo.bind.source == resolved + "/repo")
            #expect(
                try linked.check(GuestBind(source: layout.path("/srv/work/repo"), target: "/r")).workRelative == "repo")
        }
    }

    // MARK: the ownership walk

    /// A 300-deep tree (past the old walk's 256-level stop) is handed over entirely, and the
    /// setuid-root file at its bottom loses its setuid bit.
    @Test(.requiresRoot) func deepTreeIsHandedOverEntirely() throws {
        try withTemporaryDirectoryHelper { dir in
            let root = dir.appending("work")
            try FilePaths.createDirectory(root)
            var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            for _ in 0..<300 {
                #expect(mkdirat(fd, "d", 0o755) == 0)
                let next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                close(fd)
                fd = next
            }
            let file = openat(fd, "rootsh", O_CREAT | O_WRONLY | O_CLOEXEC, 0o755)
            close(file)
            #expect(fchmodat(fd, "rootsh", 0o4755, 0) == 0)
            let group = openat(fd, "groupsh", O_CREAT | O_WRONLY | O_CLOEXEC, 0o755)
            close(group)
            #expect(fchownat(fd, "groupsh", Self.owner, 0, 0) == 0)
            #expect(fchmodat(fd, "groupsh", 0o2755, 0) == 0)
            close(fd)

            let anchor = try TrustedPath.openAnchor(root, layout: dir.layout)
            let counts = WorkspaceOwnership.fix(anchor, uid: Self.owner, gid: Self.owner)
            #expect(counts.complete)
            #expect(counts.visited == 303)
            #expect(counts.changed == 303)
            // Check every level by descriptor.
            var level = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            var depth = 0
            var allOwned = true
            while true {
                var st = stat()
                fstat(level, &st)
                allOwned = allOwned && st.st_uid == Self.owner && st.st_gid == Self.owner
                let next = openat(level, "d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if next < 0 { break }
                close(level)
                level = next
                depth += 1
            }
            #expect(depth == 300 && allOwned)
            for name in ["rootsh", "groupsh"] {
                var st = stat()
                #expect(fstatat(level, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                #expect(st.st_uid == Self.owner && st.st_gid == Self.owner, "\(name)")
                #expect(st.st_mode & (S_ISUID | S_ISGID) == 0, "\(name) kept its setuid/setgid bit")
            }
            close(level)
        }
    }

    /// The runner user swaps a directory in the tree with a link to the canary while the walk
    /// runs: the walk goes by descriptor and never reaches the canary.
    @Test(.requiresRoot) func walkRacedByASwapNeverFollowsTheLink() throws {
        try withTemporaryDirectoryHelper { dir in
            let canary = try Self.makeCanary(in: dir)
            let root = dir.appending("work")
            for i in 0..<20 { try FilePaths.createDirectory(root + "/x/sub/\(i)/deeper") }
            symlink(canary, root + "/x/link")
            let anchor = try TrustedPath.openAnchor(root, layout: dir.layout)
            let race = SwapRace(root + "/x/sub", root + "/x/link")
            race.start()
            defer { race.stop() }
            for _ in 0..<200 {
                _ = WorkspaceOwnership.fix(anchor, uid: Self.owner, gid: Self.owner)
                // To another user, so every walk has work to do (and the canary, root's, shows either).
                _ = WorkspaceOwnership.fix(anchor, uid: Self.owner + 1, gid: Self.owner + 1)
            }
            race.stop()
            #expect(race.swaps > 100, "the race ran")
            Self.expectUntouched(canary)
        }
    }

    /// Route 1 without a guest: a recorded bind root swapped for a link to a root-owned tree is
    /// skipped (its staging mount is gone, and re-resolving refuses the link), never followed.
    @Test(.requiresRoot) func walkSkipsARootSwappedForALink() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            let work = layout.workDirectory
            let canary = try Self.makeCanary(in: dir)
            try FilePaths.createDirectory(work + "/a/b")
            try AtomicFile.write("x", to: work + "/a/b/step-file")
            chown(work, Self.owner, Self.owner)
            let policy = GuestPolicy(layout: layout, workOwner: (Self.owner, Self.owner))
            let checked = try policy.check(GuestBind(source: work + "/a/b", target: "/__x"))
            let st = try #require(checked.descriptor?.status())
            let name = GuestPolicy.newGuestName()
            var record = GuestRecord(
                name: name, image: "job", rootfs: "/", backend: .direct, status: .running, starterPID: getpid(),
                binds: [checked.bind], isAlpine: false)
            record.stagedBinds = [
                StagedBind(
                    index: 0, source: work + "/a/b", readOnly: false, isDirectory: true, workRelative: "a/b",
                    device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            ]
            // As the runner user: mv a a.orig; ln -s <canary> a.
            #expect(rename(work + "/a", work + "/a.orig") == 0)
            #expect(symlink(canary, work + "/a") == 0)
            let manager = GuestManager(policy: policy, logger: Logger(label: "test"))
            let counts = manager.fixOwnership(record)
            #expect(counts.visited == 0)
            Self.expectUntouched(canary)
            // An unswapped root is walked from the work directory's descriptor.
            #expect(unlink(work + "/a") == 0)
            #expect(rename(work + "/a.orig", work + "/a") == 0)
            #expect(manager.fixOwnership(record).changed == 2)
            #expect(Self.owner(of: work + "/a/b/step-file")! == (Self.owner, Self.owner))
        }
    }

    // MARK: staging

    /// The staged mount is the checked directory, whatever the caller does to the path after
    /// the check; it is nosuid,nodev (read-only when asked); teardown removes it; gc removes
    /// staging left without a record.
    @Test(.requiresRoot) func stagingMountsTheCheckedDirectory() async throws {
        try await withTemporaryDirectory("paths") { dir in
            let layout = dir.layout
            let work = layout.workDirectory
            let canary = try Self.makeCanary(in: dir)
            try FilePaths.createDirectory(work + "/r/d")
            try AtomicFile.write("real", to: work + "/r/d/real-marker")
            try FilePaths.createDirectory(layout.guestStateDirectory, mode: 0o700)
            let policy = GuestPolicy(layout: layout)
            let checked = try policy.check(GuestBind(source: work + "/r/d", target: "/__x", readOnly: true))
            // Swapped after the check.
            #expect(rename(work + "/r/d", work + "/r/d.orig") == 0)
            #expect(symlink(canary, work + "/r/d") == 0)
            let name = GuestPolicy.newGuestName()
            let staged = try BindStaging.stage(checked, index: 0, guest: name, layout: layout)
            let path = layout.guestBindStaging(name, index: 0)
            #expect(staged.isDirectory && staged.readOnly && staged.workRelative == "r/d")
            #expect(FilePaths.exists(path + "/real-marker"))
            #expect(!FilePaths.exists(path + "/canary-marker"))
            var fs = statvfs()
            #expect(statvfs(path, &fs) == 0)
            let flags = UInt(fs.f_flag)  // ST_NODEV (4) is a GNU flag Swift does not import
            #expect(flags & UInt(ST_NOSUID) != 0 && flags & 4 != 0 && flags & UInt(ST_RDONLY) != 0)
            // A file source is staged on a file.
            try AtomicFile.write("f", to: work + "/file")
            let file = try policy.check(GuestBind(source: work + "/file", target: "/f"))
            let stagedFile = try BindStaging.stage(file, index: 1, guest: name, layout: layout)
            #expect(!stagedFile.isDirectory)
            #expect(try FilePaths.read(layout.guestBindStaging(name, index: 1)) == Array("f".utf8))
            #expect(Self.mounts(under: layout.guestBindsDirectory(name)) == 2)

            // No record: gc finds the orphaned staging and removes it.
            #expect(BindStaging.orphans(layout: layout) == [name])
            let manager = GuestManager(policy: policy, logger: Logger(label: "test"))
            let removed = await manager.gc()
            #expect(removed == [name])
            #expect(Self.mounts(under: layout.guestBindsDirectory(name)) == 0)
            #expect(!FilePaths.exists(layout.guestBindsDirectory(name)))
            Self.expectUntouched(canary)
        }
    }

    /// Mounts whose mount point is at or under `path`.
    static func mounts(under path: String) -> Int {
        guard let bytes = try? FilePaths.read("/proc/self/mountinfo") else { return 0 }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").filter { line in
            let point = line.split(separator: " ").dropFirst(4).first.map(String.init) ?? ""
            return point == path || point.hasPrefix(path + "/")
        }.count
    }
}

// MARK: with guests

extension GuestSuites {
    @Suite(
        .serialized,
        .enabled(
            if: HookHarness.isAvailable, "needs root, systemd-nspawn, mmdebstrap and the built runner-agent")
    )
    struct PathRedTeamGuestTests {
        func start(_ h: HookHarness, bind: String) async -> (GuestInfo?, HookHarness.Result) {
            let started = await h.runAgent(
                ["start", "--image", "job", "--bind", bind, "--owner-pid", "\(h.owner)"], asHelper: true)
            guard started.status == .exited(0) else { return (nil, started) }
            return (try? JSONDecoder().decode(GuestInfo.self, from: Data(started.stdout)), started)
        }

        /// Route 1: `start --bind <work>/a/b:/__x`; as the runner user `mv a a.orig; ln -s
        /// <canary> a`; a step runs; the root-owned canary stays root's and unchanged, and what
        /// the step made (in the directory the guest really has) is handed over.
        @Test func routeOneOwnershipWalkFollowsNoSwappedLink() async throws {
            try await HookHarness.with { h in
                let canary = try PathRedTeamTests.makeCanary(in: h.dir)
                try FilePaths.createDirectory(h.work + "/a/b")
                chown(h.work + "/a", PathRedTeamTests.owner, PathRedTeamTests.owner)
                chown(h.work + "/a/b", PathRedTeamTests.owner, PathRedTeamTests.owner)
                let (info, result) = await start(h, bind: h.work + "/a/b:/__x")
                let guest = try #require(info, "\(result.stderr)")
                #expect(rename(h.work + "/a", h.work + "/a.orig") == 0)
                #expect(symlink(canary, h.work + "/a") == 0)
                let step = await h.runAgent(
                    ["exec", guest.name, "--", "sh", "-c", "touch /__x/from-step; ls /__x"], asHelper: true)
                #expect(step.status == .exited(0), "\(step.stderr)")
                #expect(step.text == "from-step\n", "the guest has the checked directory, not the canary")
                // The walk as the helper runs it after a step without a user namespace.
                let manager = GuestManager(
                    policy: GuestPolicy(layout: h.layout, workOwner: (PathRedTeamTests.owner, PathRedTeamTests.owner)),
                    logger: Logger(label: "test"))
                let record = try #require(try manager.record(guest.name))
                _ = manager.fixOwnership(record)
                PathRedTeamTests.expectUntouched(canary)
                #expect(
                    PathRedTeamTests.owner(of: h.work + "/a.orig/b/from-step")!
                        == (PathRedTeamTests.owner, PathRedTeamTests.owner))
                _ = await h.runAgent(["stop", guest.name], asHelper: true)
                #expect(await h.leftoversAfterSettling() == [])
            }
        }

        /// Route 2: the runner user swaps `<work>/r/d` with a link to a canary in a tight
        /// `renameat2(RENAME_EXCHANGE)` loop while starting guests with `--bind <work>/r/d:/__x`.
        /// No guest ever sees the canary; each start binds the real directory or is refused
        /// naming the link.
        @Test func routeTwoCheckThenMountRaceNeverReachesTheCanary() async throws {
            try await HookHarness.with { h in
                let canary = try PathRedTeamTests.makeCanary(in: h.dir)
                try FilePaths.createDirectory(h.work + "/r/d")
                try AtomicFile.write("real", to: h.work + "/r/d/real-marker")
                #expect(symlink(canary, h.work + "/r/swap") == 0)
                let race = SwapRace(h.work + "/r/d", h.work + "/r/swap")
                race.start()
                defer { race.stop() }
                var bound = 0
                var refused = 0
                for _ in 0..<20 {
                    let (info, result) = await start(h, bind: h.work + "/r/d:/__x")
                    if let info {
                        bound += 1
                        let root = "/proc/\(info.leaderPID)/root/__x"
                        #expect(!FilePaths.exists(root + "/canary-marker"), "the guest sees the canary")
                        #expect(FilePaths.exists(root + "/real-marker"), "the guest has the real directory")
                        _ = await h.runAgent(["stop", info.name], asHelper: true)
                    } else {
                        refused += 1
                        #expect(result.stderr.contains("symbolic link"), "\(result.stderr)")
                    }
                }
                race.stop()
                #expect(race.swaps > 100, "the race ran")
                #expect(bound + refused == 20)
                PathRedTeamTests.expectUntouched(canary)
                #expect(await h.leftoversAfterSettling() == [])
            }
        }

        /// Route 6's writable bind: externals (and anything in it) is bound read-only whatever
        /// the caller asks; a step cannot create a file there.
        @Test func externalsIsAlwaysReadOnly() async throws {
            try await HookHarness.with { h in
                let (info, result) = await start(h, bind: h.externals + ":/__e")
                let guest = try #require(info, "\(result.stderr)")
                let manager = GuestManager(policy: GuestPolicy(layout: h.layout), logger: Logger(label: "test"))
                let record = try #require(try manager.record(guest.name))
                #expect(record.binds.first?.readOnly == true)
                let step = await h.runAgent(
                    ["exec", guest.name, "--", "sh", "-c", "touch /__e/rootsh || mkdir /__e/node20/x || exit 3"],
                    asHelper: true)
                #expect(step.status == .exited(3), "\(step.stderr)")
                #expect(!FilePaths.exists(h.externals + "/rootsh"))
                #expect(!FilePaths.exists(h.externals + "/node20/x"))
                _ = await h.runAgent(["stop", guest.name], asHelper: true)
                // A subdirectory asked for writable is read-only too.
                let (sub, subResult) = await start(h, bind: h.externals + "/node20:/__n")
                let subGuest = try #require(sub, "\(subResult.stderr)")
                let touch = await h.runAgent(["exec", subGuest.name, "--", "touch", "/__n/x"], asHelper: true)
                #expect(touch.status != .exited(0))
                #expect(!FilePaths.exists(h.externals + "/node20/x"))
                _ = await h.runAgent(["stop", subGuest.name], asHelper: true)
                #expect(await h.leftoversAfterSettling() == [])
            }
        }
    }
}

/// Swaps two names with `renameat2(RENAME_EXCHANGE)` in a tight loop on a thread of its own, as
/// the runner user would to race the helper's check against its mount.
final class SwapRace: Sendable {
    private let running = Atomic<Bool>(true)
    private let count = Atomic<Int>(0)
    private let first: String
    private let second: String

    init(_ first: String, _ second: String) {
        self.first = first
        self.second = second
    }

    func start() {
        let thread = Thread { [self] in
            while running.load(ordering: .relaxed) {
                if runner_renameat2(AT_FDCWD, first, AT_FDCWD, second, UInt32(RUNNER_RENAME_EXCHANGE)) == 0 {
                    count.add(1, ordering: .relaxed)
                }
            }
        }
        thread.start()
    }

    func stop() { running.store(false, ordering: .relaxed) }
    var swaps: Int { count.load(ordering: .relaxed) }
}
