import RunnerCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Decoded guest records, kept while their file is unchanged: the step relay reads its guest's
/// record on every step, and decoding it (a few kilobytes of JSON) was a tenth of a step's cost.
///
/// A record is written whole and renamed into place (``AtomicFile``), so a changed record is a
/// new file: the cache keys each entry on the file's device, inode, size, modification and
/// change times, taken with `fstat` on the descriptor the bytes are read from, so the key always
/// describes the bytes it holds.
package final class GuestRecordCache: Sendable {
    struct Key: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modified: timespec
        var changed: timespec

        static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.device == rhs.device && lhs.inode == rhs.inode && lhs.size == rhs.size
                && lhs.modified.tv_sec == rhs.modified.tv_sec && lhs.modified.tv_nsec == rhs.modified.tv_nsec
                && lhs.changed.tv_sec == rhs.changed.tv_sec && lhs.changed.tv_nsec == rhs.changed.tv_nsec
        }

        init(_ st: stat) {
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            modified = st.st_mtim
            changed = st.st_ctim
        }
    }

    private let entries = Mutex<[String: (key: Key, record: GuestRecord)]>([:])

    package init() {}

    /// How many decodes the cache saved (for tests).
    package var hits: Int { hitCount.withLock { $0 } }
    private let hitCount = Mutex(0)

    /// The record at `path`, decoded once per version of the file; nil when there is none.
    package func record(at path: String) throws(RunnerError) -> GuestRecord? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT {
                _ = entries.withLock { $0.removeValue(forKey: path) }
                return nil
            }
            throw RunnerError.posix("could not open", path, fix: "run `ci-nspawn-run gc`")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw RunnerError.posix("could not stat", path, fix: nil) }
        let key = Key(st)
        if let cached = entries.withLock({ $0[path] }), cached.key == key {
            hitCount.withLock { $0 += 1 }
            return cached.record
        }
        let record = try GuestRecord.decode(try FilePaths.read(descriptor: fd, path: path), path: path)
        entries.withLock { $0[path] = (key, record) }
        return record
    }
}
