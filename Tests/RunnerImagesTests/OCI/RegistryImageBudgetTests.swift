import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `RUNNER_IMAGE_CACHE_MAX` on a store of fabricated trees: least recently used first, a job's
/// use moves an image to the back, and nothing a job, a guest or a pull holds is removed.
@Suite struct RegistryImageBudgetTests {
    struct Tree {
        var hex: String
        var blob: String
        var reference: ImageReference
    }

    /// A complete tree `registry.test/<name>:1` of `size` bytes, last used at `lastUsed`, with
    /// one blob of its own.
    static func addTree(_ store: RegistryImageStore, _ name: String, size: Int64, lastUsed: Int64) throws -> Tree {
        let hex = SHA256Digest.hex(of: Array(name.utf8))
        let blob = SHA256Digest.hex(of: Array((name + "-layer").utf8))
        try FilePaths.createDirectory(store.layout.ociTree(hex) + "/rootfs")
        try FilePaths.createDirectory(store.layout.ociBlobsDirectory)
        try AtomicFile.write("layer of \(name)", to: store.layout.ociBlob(blob))
        let reference = try ImageReference(parsing: "registry.test/\(name):1")
        let record = PulledImageRecord(
            references: [reference.description], digest: "sha256:" + hex, indexDigest: nil, platform: "linux/amd64",
            blobs: ["sha256:" + blob], size: size, pulled: lastUsed, lastUsed: lastUsed)
        try record.write(to: store.layout.ociTree(hex) + "/image.json")
        return Tree(hex: hex, blob: blob, reference: reference)
    }

    static func names(_ images: [PulledImage]) -> [String] {
        images.map { $0.reference.repository }
    }

    @Test func leastRecentlyUsedGoFirstAndTheirBlobsWithThem() throws {
        let dir = try TemporaryDirectory("budget")
        defer { dir.remove() }
        let store = RegistryImageStore(layout: dir.layout)
        let a = try Self.addTree(store, "a", size: 100, lastUsed: 100)
        let b = try Self.addTree(store, "b", size: 100, lastUsed: 300)
        let c = try Self.addTree(store, "c", size: 100, lastUsed: 200)
        #expect(Self.names(store.list()) == ["a", "c", "b"])
        // Within budget: nothing goes.
        #expect(try store.enforceBudget(maxBytes: 300).isEmpty)
        #expect(Self.names(try store.enforceBudget(maxBytes: 200)) == ["a"])
        #expect(Self.names(try store.enforceBudget(maxBytes: 150)) == ["c"])
        #expect(Self.names(store.list()) == ["b"])
        #expect(!FilePaths.exists(store.layout.ociTree(a.hex)) && !FilePaths.exists(store.layout.ociTree(c.hex)))
        #expect(FilePaths.entries(of: store.layout.ociBlobsDirectory) == [b.blob])
    }

    @Test func aJobsUseMovesTheImageToTheBackOfTheQueue() async throws {
        let dir = try TemporaryDirectory("budget")
        defer { dir.remove() }
        let store = RegistryImageStore(layout: dir.layout)
        let a = try Self.addTree(store, "a", size: 100, lastUsed: 100)
        _ = try Self.addTree(store, "b", size: 100, lastUsed: 200)
        // The hook's store lookup (a job resolved it) marks it used now.
        let before = Int64(time(nil))
        let held = try #require(try await store.hold(a.reference, holder: nil))
        #expect(held.manifestDigest == "sha256:" + a.hex)
        #expect(held.record.lastUsed >= before)
        #expect(Self.names(store.list()) == ["b", "a"])
        #expect(Self.names(try store.enforceBudget(maxBytes: 100)) == ["b"])
        // A guest booting it (by digest) marks it too.
        let c = try Self.addTree(store, "c", size: 100, lastUsed: Int64(time(nil)) + 1000)
        try store.touch(hex: a.hex)
        #expect(Self.names(store.list()) == ["a", "c"])
        #expect(Self.names(try store.enforceBudget(maxBytes: 100)) == ["a"])
        #expect(store.lookup(c.reference) != nil)
        // Not in the store: nil, and nothing is pinned.
        #expect(try await store.hold(try ImageReference(parsing: "registry.test/absent:1"), holder: nil) == nil)
    }

    @Test func treesGuestsBootFromAreKept() throws {
        let dir = try TemporaryDirectory("budget")
        defer { dir.remove() }
        let store = RegistryImageStore(layout: dir.layout)
        let a = try Self.addTree(store, "a", size: 100, lastUsed: 100)
        _ = try Self.addTree(store, "b", size: 100, lastUsed: 200)
        let removed = try store.enforceBudget(maxBytes: 0, keeping: [store.layout.ociTree(a.hex)])
        #expect(Self.names(removed) == ["b"])
        #expect(Self.names(store.list()) == ["a"])
    }

    /// The race: a job resolved an image (pinned by its owner) and its guest has not booted yet,
    /// or a pull has downloaded blobs that no tree lists yet. Neither the budget nor `image
    /// remove` takes them; once the holder lets go (or is gone), they can.
    @Test func whatALiveHolderPinsIsNeverEvicted() async throws {
        let dir = try TemporaryDirectory("budget")
        defer { dir.remove() }
        let store = RegistryImageStore(layout: dir.layout)
        let me = try #require(ImageHolder.current)
        let a = try Self.addTree(store, "a", size: 100, lastUsed: 100)
        _ = try Self.addTree(store, "b", size: 100, lastUsed: 200)
        // A pull in flight: its manifest is not a tree yet, one layer is already in place.
        let pulling = SHA256Digest.hex(of: Array("pulling".utf8))
        let inFlight = SHA256Digest.hex(of: Array("in-flight-layer".utf8))
        let pullPin = try store.pin(pulling, blobs: ["sha256:" + inFlight], holder: me)
        try AtomicFile.write("half a pull", to: store.layout.ociBlob(inFlight))
        // The job's owner holds a (the hook resolved it from the store).
        let held = try #require(try await store.hold(a.reference, holder: me))
        #expect(held.treeDirectory == store.layout.ociTree(a.hex))
        #expect(try store.pins().trees == [a.hex, pulling])

        #expect(Self.names(try store.enforceBudget(maxBytes: 0)) == ["b"])
        #expect(Self.names(store.list()) == ["a"])
        #expect(FilePaths.exists(store.layout.ociBlob(inFlight)))
        #expect(FilePaths.exists(store.layout.ociBlob(a.blob)))
        let refused = #expect(throws: RunnerError.self) { try store.remove(a.reference) }
        #expect(refused?.code == .alreadyExists)
        #expect(refused?.problem.contains("holds it") == true)
        #expect(store.lookup(a.reference) != nil)

        // The pull ends, the job ends: both go at the next enforcement.
        try store.unpin(pullPin)
        #expect(try store.release(me) == 1)
        #expect(Self.names(try store.enforceBudget(maxBytes: 0)) == ["a"])
        #expect(FilePaths.entries(of: store.layout.ociBlobsDirectory).isEmpty)
        #expect(FilePaths.entries(of: store.layout.ociPinsDirectory).isEmpty)
    }

    @Test func aPinWhoseHolderIsGoneHoldsNothing() throws {
        let dir = try TemporaryDirectory("budget")
        defer { dir.remove() }
        let store = RegistryImageStore(layout: dir.layout)
        let me = try #require(ImageHolder.current)
        let a = try Self.addTree(store, "a", size: 100, lastUsed: 100)
        // Same PID, another start time: a reused PID, not the holder.
        let gone = ImageHolder(pid: me.pid, startTime: me.startTime + 1)
        #expect(!gone.isAlive)
        try store.pin(a.hex, holder: gone)
        #expect(try store.pins().trees.isEmpty)
        #expect(FilePaths.entries(of: store.layout.ociPinsDirectory).isEmpty)
        #expect(Self.names(try store.enforceBudget(maxBytes: 0)) == ["a"])
        // Pins are named by digest only.
        #expect(throws: RunnerError.self) { try store.pin("../../etc", holder: me) }
    }

    @Test func neverPullingAndAbsentNamesTheReference() async throws {
        let dir = try TemporaryDirectory("budget")
        defer { dir.remove() }
        let store = RegistryImageStore(layout: dir.layout)
        let reference = try ImageReference(parsing: "registry.test/absent:1")
        let error = await #expect(throws: RunnerError.self) {
            try await store.resolve(reference, policy: .never, credentials: nil)
        }
        #expect(error?.code == .notFound)
        #expect(error?.input == "registry.test/absent:1")
        #expect(error?.problem.contains("RUNNER_IMAGE_PULL=never") == true)
        // Present: found without a registry (none is reachable at registry.test).
        let a = try Self.addTree(store, "a", size: 1, lastUsed: 1)
        let found = try await store.resolve(a.reference, policy: .never, credentials: nil)
        #expect(found.manifestDigest == "sha256:" + a.hex)
    }
}
