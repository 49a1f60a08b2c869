import FoundationEssentials
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh directory under the system temp dir, removed by ``remove()``.
/// Tests hand its path to `HostLayout(root:)` to run host code against a throwaway tree.
public struct TemporaryDirectory: Sendable {
    public let path: String

    /// Creates `/tmp/runner-test-<label>-XXXXXX` (or under `$TMPDIR`).
    public init(_ label: String = "t") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/runner-test-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        guard let made else {
            throw RunnerError.posix("mkdtemp failed", base, fix: nil)
        }
        path = String(cString: made)
    }

    /// `path/relative`.
    public func appending(_ relative: String) -> String { path + "/" + relative }

    /// A host layout rooted here.
    public var layout: HostLayout { HostLayout(root: path) }

    /// Removes the directory and everything in it.
    public func remove() {
        try? FilePaths.remove(path)
    }
}

/// Runs `body` with a temporary directory that is removed afterwards, whatever happens.
public func withTemporaryDirectory<T>(
    _ label: String = "t",
    _ body: (TemporaryDirectory) async throws -> T
) async throws -> T {
    let dir = try TemporaryDirectory(label)
    defer { dir.remove() }
    return try await body(dir)
}

/// Runs `body` with a temporary directory (labelled "hook") that is removed afterwards, for
/// synchronous tests.
public func withTemporaryDirectoryHelper(_ body: (TemporaryDirectory) throws -> Void) throws {
    let dir = try TemporaryDirectory("hook")
    defer { dir.remove() }
    try body(dir)
}
