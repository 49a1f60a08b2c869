import RunnerArchive
import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Writes an archive with exactly these headers (and contents for regular files), through
/// our libarchive writer: how the tests build hostile archives.
public func writeRawArchive(
    _ path: String,
    _ entries: [(ArchiveEntry, [UInt8])],
    compression: ArchiveCompression = .defaultGzip
) throws {
    try ArchiveFile.write(to: path, compression: compression, replaceExisting: true) { (writer) throws(ArchiveError) in
        for (entry, contents) in entries {
            if entry.kind == .regularFile {
                try writer.write(entry, contents: contents)
            } else {
                try writer.writeHeader(entry)
            }
        }
    }
}

public func file(_ path: String, _ text: String = "x", mode: UInt32 = 0o644) -> (ArchiveEntry, [UInt8]) {
    (ArchiveEntry(path: path, kind: .regularFile, permissions: mode), Array(text.utf8))
}

public func directory(_ path: String, mode: UInt32 = 0o755) -> (ArchiveEntry, [UInt8]) {
    (ArchiveEntry(path: path, kind: .directory, permissions: mode), [])
}

public func symlink(_ path: String, to target: String) -> (ArchiveEntry, [UInt8]) {
    (ArchiveEntry(path: path, kind: .symlink, permissions: 0o777, linkTarget: target), [])
}

public func hardlink(_ path: String, to target: String) -> (ArchiveEntry, [UInt8]) {
    (ArchiveEntry(path: path, kind: .hardlink, permissions: 0o644, linkTarget: target), [])
}

/// Writes a small file.
public func writeText(_ path: String, _ text: String, mode: UInt32 = 0o644) throws {
    try AtomicFile.write(text, to: path, mode: mode)
}

public func fileText(_ path: String) -> String? {
    guard let bytes = try? FilePaths.read(path) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}

public func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

/// Runs a command and returns its stdout; fails the test on a non-zero exit.
public func output(_ executable: String, _ arguments: [String], environment: [String: String?] = [:]) async throws
    -> String
{
    let command = Command(executable, arguments, environment: environment)
    return try await SystemCommandRunner().output(command)
}
