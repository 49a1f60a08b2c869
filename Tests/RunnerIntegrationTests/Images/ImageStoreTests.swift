import FoundationEssentials
import RunnerAgentKit
import RunnerCore
import RunnerGuests
import RunnerImages
import RunnerSystem
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The store against small real archives (tar --zstd) under a temporary host root.
@Suite(.requiresRoot, .requires("tar"), .requires("zstd"))
struct ImageStoreTests {
    /// Makes `rootfs-<label>.tar.zst` with `/etc/os-release` saying `label`, and its manifest.
    func makeArchive(_ dir: TemporaryDirectory, label: String) async throws -> (archive: String, manifest: String) {
        let tree = dir.appending("src-\(label)")
        try AtomicFile.write("ID=\(label)\n", to: tree + "/etc/os-release")
        try FilePaths.createDirectory(tree + "/usr/bin")
        let archive = dir.appending("rootfs-\(label).tar.zst")
        try await SystemCommandRunner().output(
            Command("tar", ["--zstd", "--numeric-owner", "-C", tree, "-cf", archive, "."]))
        let sha = try SHA256Digest.hex(ofFile: archive)
        let manifest = RootfsManifest(
            name: "demo", version: label, recipeDigest: String(repeating: "0", count: 64), suite: "bookworm",
            architecture: "amd64", variant: "minbase", mirror: "http://m", snapshot: nil, sourceDateEpoch: 1,
            builder: "test", archive: FilePaths.basename(archive), archiveSHA256: sha, archiveSize: 1,
            packages: [.init(name: "bash", version: "5.2", architecture: "amd64")])
        let manifestPath = dir.appending("rootfs-\(label).manifest.json")
        try AtomicFile.write(try manifest.encoded(), to: manifestPath)
        return (archive, manifestPath)
    }

    func versions(_ store: ImageStore, _ name: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: store.layout.imageDirectory(name))
            .filter { SHA256Digest.isValidHex($0) }.sorted()
    }

    /// With user namespaces (what `image import` and the installer do by default) a version is
    /// shifted into the guests' range before `current` points at it, and says so in its marker.
    @Test func importShiftsOwnersIntoTheGuestRange() async throws {
        try await withTemporaryDirectory("store") { dir in
            let range = GuestUserNamespace.standard
            let store = ImageStore(layout: HostLayout(root: dir.appending("host")), userNamespace: range)
            let one = try await makeArchive(dir, label: "one")
            let image = try await store.importArchive(one.archive, name: "demo")
            #expect(try ImageOwnership.marker(version: store.versionDirectory(image)) == range)
            var st = stat()
            #expect(lstat(image.rootfs + "/etc/os-release", &st) == 0 && st.st_uid == range.base)
            #expect(lstat(image.rootfs, &st) == 0 && st.st_uid == range.base)
        }
    }

    @Test func importSwitchesCurrentAndKeepsOnlyThePreviousVersion() async throws {
        try await withTemporaryDirectory("store") { dir in
            let store = ImageStore(layout: HostLayout(root: dir.appending("host")))
            #expect(try store.list().isEmpty)
            let one = try await makeArchive(dir, label: "one")
            let two = try await makeArchive(dir, label: "two")
            let three = try await makeArchive(dir, label: "three")

            let first = try await store.importArchive(one.archive, name: "demo", manifest: one.manifest)
            #expect(first.rootfs == store.layout.imageDirectory("demo") + "/\(first.digest)/rootfs")
            #expect(try FilePaths.read(first.rootfs + "/etc/os-release") == Array("ID=one\n".utf8))
            #expect(first.manifest?.version == "one")
            #expect(
                try FileManager.default.destinationOfSymbolicLink(atPath: store.layout.currentImage("demo"))
                    == first.digest)

            let second = try await store.importArchive(two.archive, name: "demo")
            #expect(try store.rootfsPath(for: "demo") == second.rootfs)
            #expect(second.manifest == nil)
            #expect(try versions(store, "demo") == [first.digest, second.digest].sorted())
            #expect(FilePaths.exists(first.rootfs + "/etc/os-release"), "the previous version is kept")

            let third = try await store.importArchive(three.archive, name: "demo", manifest: three.manifest)
            #expect(try versions(store, "demo") == [second.digest, third.digest].sorted())
            #expect(try store.list().map(\.digest) == [third.digest])

            // Importing the active version again changes nothing.
            let again = try await store.importArchive(three.archive, name: "demo")
            #expect(again == third)
            // The layout's own path for guests follows `current`.
            #expect(
                try FilePaths.read(store.layout.imageRootfs("demo") + "/etc/os-release") == Array("ID=three\n".utf8))
        }
    }

    /// A kill between the `current` link's temporary and its rename, or during unpacking, leaves
    /// `.current.tmp-PID-N` and `.incoming-DIGEST-PID`; the next import removes a dead writer's
    /// (so the installer converges on the same tree) and leaves a live writer's alone.
    @Test func anImportRemovesWhatAKilledImportLeft() async throws {
        try await withTemporaryDirectory("store") { dir in
            let store = ImageStore(layout: HostLayout(root: dir.appending("host")))
            let one = try await makeArchive(dir, label: "one")
            let imageDirectory = store.layout.imageDirectory("demo")
            try FilePaths.createDirectory(imageDirectory)
            // A PID that is gone: a child that has exited and been reaped.
            let exited = try Spawner.spawn(Command("true"))
            _ = await exited.wait()
            let child = exited.pid
            let dead = [".current.tmp-\(child)-12345", ".incoming-0123456789ab-\(child)"]
            let live = [".current.tmp-\(getpid())-1", ".incoming-0123456789ab-\(getpid())"]
            for name in dead + live {
                #expect(symlink("nowhere", imageDirectory + "/" + name) == 0)
            }
            try FilePaths.createDirectory(imageDirectory + "/.incoming-ba9876543210-\(child)/rootfs")

            _ = try await store.importArchive(one.archive, name: "demo")
            let left = Set(FilePaths.entries(of: imageDirectory).filter { $0.hasPrefix(".") })
            #expect(left == Set(live))
        }
    }

    @Test func manifestMismatchIsRefusedAndCurrentStays() async throws {
        try await withTemporaryDirectory("store-mismatch") { dir in
            let store = ImageStore(layout: HostLayout(root: dir.appending("host")))
            let one = try await makeArchive(dir, label: "one")
            let two = try await makeArchive(dir, label: "two")
            let first = try await store.importArchive(one.archive, name: "demo")
            await #expect {
                try await store.importArchive(two.archive, name: "demo", manifest: one.manifest)
            } throws: { error in
                guard let error = error as? RunnerError else { return false }
                return error.code == .integrity && error.problem.contains("does not match")
            }
            #expect(try store.resolve("demo").digest == first.digest)
            #expect(try versions(store, "demo") == [first.digest])
        }
    }

    @Test func corruptArchiveLeavesNothingBehind() async throws {
        try await withTemporaryDirectory("store-corrupt") { dir in
            let store = ImageStore(layout: HostLayout(root: dir.appending("host")))
            let bad = dir.appending("bad.tar.zst")
            try AtomicFile.write("this is not an archive", to: bad)
            await #expect(throws: RunnerError.self) { try await store.importArchive(bad, name: "demo") }
            let entries = try FileManager.default.contentsOfDirectory(atPath: store.layout.imageDirectory("demo"))
            #expect(entries.isEmpty, "no half-unpacked version: \(entries)")
            #expect(throws: RunnerError.self) { try store.resolve("demo") }
        }
    }

    @Test func escapingArchiveIsRefusedAndTheActiveVersionStays() async throws {
        try await withTemporaryDirectory("store-escape") { dir in
            let store = ImageStore(layout: HostLayout(root: dir.appending("host")))
            let one = try await makeArchive(dir, label: "one")
            let first = try await store.importArchive(one.archive, name: "demo")
            try AtomicFile.write("x\n", to: dir.appending("evil/f"))
            let evil = dir.appending("evil.tar.zst")
            try await SystemCommandRunner().output(
                Command(
                    "tar",
                    ["--zstd", "-cf", evil, "-C", dir.appending("evil"), "--transform", "s,^\\./f,../escape,", "./f"]))
            await #expect {
                try await store.importArchive(evil, name: "demo")
            } throws: { error in
                (error as? RunnerError)?.code == .unsafeInput
            }
            #expect(!FilePaths.exists(store.layout.imageDirectory("demo") + "/../escape"))
            #expect(try store.resolve("demo") == first)
            #expect(try versions(store, "demo") == [first.digest])
        }
    }

    @Test func unknownImageNamesTheAvailableOnes() async throws {
        try await withTemporaryDirectory("store-unknown") { dir in
            let store = ImageStore(layout: HostLayout(root: dir.appending("host")))
            let one = try await makeArchive(dir, label: "one")
            try await store.importArchive(one.archive, name: "debian-bookworm")
            #expect {
                try store.resolve("ubuntu-noble")
            } throws: { error in
                guard let error = error as? RunnerError else { return false }
                return error.code == .notFound && error.problem.contains("available: debian-bookworm")
            }
            #expect(throws: RunnerError.self) { try store.remove("ubuntu-noble") }
            try store.remove("debian-bookworm")
            #expect(try store.list().isEmpty)
        }
    }
}
