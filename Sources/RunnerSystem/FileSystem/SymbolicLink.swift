import CRunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Reading symbolic links (`readlink(2)`), without following them.
package enum SymbolicLink {
    /// What the link at `path` points to, or nil when `path` is not a link (or is gone).
    package static func target(_ path: String) -> String? { target(fd: AT_FDCWD, name: path) }

    /// What the link `name` in the directory `fd` points to, or nil.
    package static func target(fd: Int32, name: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlinkat(fd, name, &buffer, 4096)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
