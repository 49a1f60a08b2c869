import FoundationEssentials
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A process that holds registry images in the store: a pull while it runs, a job's owner
/// process (the runner's worker) while its job runs. Named by PID and start time, so a PID the
/// kernel reuses holds nothing.
public struct ImageHolder: Sendable, Hashable {
    public var pid: Int32
    public var startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// This process (nil only when `/proc` cannot say when it started).
    public static var current: ImageHolder? {
        ProcessTable.startTime(of: getpid()).map { ImageHolder(pid: getpid(), startTime: $0) }
    }

    /// Whether the process still runs (same PID, same start time).
    public var isAlive: Bool { ProcessTable.isAlive(pid, startTime: startTime) }
}

/// Pins: what keeps an image in use out of the budget's and `image remove`'s reach. A pin is a
/// file of ``HostLayout/ociPinsDirectory`` named `<manifest-hex>.<pid>.<start time>.<random>`
/// holding the JSON list of the blobs the image needs (the ones a pull is still downloading
/// included). Pins are written and read under the store's lock, so a tree or blob is either
/// pinned before an eviction looks, or the eviction is over before the pin is taken (and the
/// pinner finds the tree gone). A pin whose holder is gone is removed by the next reader.
extension RegistryImageStore {
    /// What live holders keep: manifest hexes (trees) and blob hexes.
    public struct Pinned: Sendable, Hashable {
        public var trees: Set<String> = []
        public var blobs: Set<String> = []
    }

    /// Pins the image of manifest `hex` (and `blobs`, `sha256:…` digests) for `holder`; returns
    /// the pin's name for ``unpin(_:)``. Refuses a `hex` that is not 64 lowercase hex digits.
    @discardableResult
    public func pin(_ hex: String, blobs: [String] = [], holder: ImageHolder) throws(RunnerError) -> String {
        guard SHA256Digest.isValidHex(hex) else {
            throw RunnerError(
                .invalidInput, input: hex, problem: "is not the hex of a sha256 manifest digest",
                fix: "name the image by its manifest digest (sha256:<64 hex digits>)")
        }
        let name = "\(hex).\(holder.pid).\(holder.startTime).\(UInt32.random(in: 0...UInt32.max))"
        let list = "[" + blobs.map { "\"\($0)\"" }.joined(separator: ",") + "]\n"
        try locked { () throws(RunnerError) in
            try FilePaths.createDirectory(layout.ociPinsDirectory, mode: 0o700)
            // Not synced: a pin means nothing after a reboot (its holder is gone).
            try AtomicFile.write(
                Array(list.utf8), to: layout.ociPinsDirectory + "/" + name, mode: 0o600, durable: false)
        }
        return name
    }

    /// Removes one pin (a name ``pin(_:blobs:holder:)`` returned); a pin already gone is fine.
    public func unpin(_ name: String) throws(RunnerError) {
        guard !name.contains("/"), !name.hasPrefix(".") else { return }
        try locked { () throws(RunnerError) in
            _ = unlink(layout.ociPinsDirectory + "/" + name)
        }
    }

    /// Removes every pin of `holder` (its job ended). Returns how many there were.
    @discardableResult
    public func release(_ holder: ImageHolder) throws(RunnerError) -> Int {
        try locked { () throws(RunnerError) -> Int in
            var count = 0
            for entry in FilePaths.entries(of: layout.ociPinsDirectory) {
                guard let pin = Self.parsePin(entry), pin.holder == holder else { continue }
                unlink(layout.ociPinsDirectory + "/" + entry)
                count += 1
            }
            return count
        }
    }

    /// The trees and blobs pinned by live holders; pins of holders gone (and files that are not
    /// pins) are removed. Call it holding the store's lock.
    func livePins() -> Pinned {
        var pinned = Pinned()
        for entry in FilePaths.entries(of: layout.ociPinsDirectory) {
            let path = layout.ociPinsDirectory + "/" + entry
            guard let pin = Self.parsePin(entry), pin.holder.isAlive else {
                unlink(path)
                continue
            }
            pinned.trees.insert(pin.hex)
            guard let bytes = try? FilePaths.read(path),
                let blobs = try? JSONDecoder().decode([String].self, from: Data(bytes))
            else { continue }
            for blob in blobs where blob.hasPrefix("sha256:") { pinned.blobs.insert(String(blob.dropFirst(7))) }
        }
        return pinned
    }

    /// The live pins, under the store's lock (pins of holders gone are removed).
    public func pins() throws(RunnerError) -> Pinned {
        try locked { () throws(RunnerError) -> Pinned in livePins() }
    }

    /// `<hex>.<pid>.<start>.<random>` → its parts, or nil.
    static func parsePin(_ name: String) -> (hex: String, holder: ImageHolder)? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, SHA256Digest.isValidHex(String(parts[0])), let pid = Int32(parts[1]), pid > 0,
            let start = UInt64(parts[2]), UInt32(parts[3]) != nil
        else { return nil }
        return (String(parts[0]), ImageHolder(pid: pid, startTime: start))
    }
}
