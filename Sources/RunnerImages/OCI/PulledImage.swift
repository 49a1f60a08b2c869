import FoundationEssentials
import RunnerCore

/// One image pulled from a registry and unpacked in the store
/// (``HostLayout/ociTree(_:)``): what a guest boots from.
public struct PulledImage: Sendable, Hashable {
    /// The reference it was asked by (or, listed, the last reference it was pulled as).
    public var reference: ImageReference
    /// `sha256:<hex>` of the image manifest (for this host's platform, when the reference
    /// names an index).
    public var manifestDigest: String
    /// `/var/lib/runner/images/.oci/trees/<manifest-hex>`.
    public var treeDirectory: String
    /// What `image.json` says about it.
    public var record: PulledImageRecord

    public init(reference: ImageReference, manifestDigest: String, treeDirectory: String, record: PulledImageRecord) {
        self.reference = reference
        self.manifestDigest = manifestDigest
        self.treeDirectory = treeDirectory
        self.record = record
    }

    /// `<tree>/rootfs`: the read-only tree, owners already in the guests' range (when the store
    /// shifts them; `<tree>/userns` says which range, as for baked images: ``ImageOwnership``).
    public var rootfs: String { treeDirectory + "/rootfs" }
    /// `<tree>/config.json`: the image's config blob, verified, byte for byte as served.
    public var configPath: String { treeDirectory + "/config.json" }
    /// `<tree>/image.json`: the ``record``.
    public var recordPath: String { treeDirectory + "/image.json" }
}

/// `<tree>/image.json`: the references a tree was pulled as, its digests, size and last use.
public struct PulledImageRecord: Sendable, Hashable, Codable {
    /// Every reference (normal form, `docker.io/library/node:20`) that resolves to this tree,
    /// the most recent last. A tag that moves is taken off the tree it left.
    public var references: [String]
    /// `sha256:<hex>` of the manifest.
    public var digest: String
    /// `sha256:<hex>` of the index it was chosen from, when there was one.
    public var indexDigest: String?
    /// The platform (`linux/amd64`).
    public var platform: String
    /// Every blob the tree came from (index, manifest, config, layers): what keeps them in the store.
    public var blobs: [String]
    /// Bytes on disk, approximately: the tree's file content plus its blobs.
    public var size: Int64
    /// When it was pulled, in seconds since the epoch.
    public var pulled: Int64
    /// When a guest last booted it (or it was pulled), in seconds since the epoch: the budget's
    /// least recently used go first.
    public var lastUsed: Int64

    public init(
        references: [String], digest: String, indexDigest: String?, platform: String, blobs: [String], size: Int64,
        pulled: Int64, lastUsed: Int64
    ) {
        self.references = references
        self.digest = digest
        self.indexDigest = indexDigest
        self.platform = platform
        self.blobs = blobs
        self.size = size
        self.pulled = pulled
        self.lastUsed = lastUsed
    }

    static func load(_ path: String) throws(RunnerError) -> PulledImageRecord {
        let bytes = try FilePaths.read(path)
        do {
            return try JSONDecoder().decode(PulledImageRecord.self, from: Data(bytes))
        } catch {
            throw RunnerError(
                .integrity, input: path, problem: "is not an image record", fix: "remove the image and pull it again",
                underlying: error)
        }
    }

    /// Writes the record atomically; `durable` false skips the fsync (a last-use update).
    func write(to path: String, durable: Bool = true) throws(RunnerError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        do {
            try AtomicFile.write(Array(try encoder.encode(self)) + [10], to: path, mode: 0o644, durable: durable)
        } catch let error as RunnerError {
            throw error
        } catch {
            throw RunnerError(.internal, input: path, problem: "could not encode the image record", underlying: error)
        }
    }
}
