import CLibArchive

/// libarchive, opened on first use rather than linked (CLibArchive's `loader.c`).
///
/// A process that never reads or writes an archive (a container hook call, the guest helper)
/// never maps libarchive nor what it pulls in (libxml2, ICU, libstdc++, nettle, the
/// compressors); that loading was most of an agent call's start. Every entry point of this
/// module that creates a libarchive object calls ``load()`` first, so a host without libarchive
/// gets an ``ArchiveError/libraryUnavailable(library:problem:)`` naming it, never a crash.
public enum ArchiveLibrary {
    /// The shared library loaded: the system's, so its security updates apply.
    public static let soname = RUNNER_ARCHIVE_SONAME

    /// Loads libarchive into this process, once (later calls return the first outcome).
    public static func load() throws(ArchiveError) {
        if let problem = message({ runner_archive_load($0, $1) }) {
            throw .libraryUnavailable(library: soname, problem: problem)
        }
    }

    /// Whether the library `soname` opens and has every function this module calls; nil when it
    /// does, or the problem. The process's own libarchive is left as it is.
    public static func probe(_ soname: String) -> String? {
        message { buffer, size in runner_archive_probe(soname, buffer, size) }
    }

    /// Runs `call` with a message buffer: nil on success, else the message it wrote.
    private static func message(_ call: (UnsafeMutablePointer<CChar>, Int) -> Int32) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 512) { buffer in
            buffer.initialize(repeating: 0)
            guard let base = buffer.baseAddress, call(base, buffer.count) != 0 else { return nil }
            return String(cString: base)
        }
    }
}
