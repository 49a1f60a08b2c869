import CLibArchive

#if canImport(Glibc)
    import Glibc
#endif

/// libarchive's version string, e.g. "libarchive 3.6.2 zlib/1.2.13 ...", or why it could not be
/// loaded.
public var libarchiveVersion: String {
    do {
        try ArchiveLibrary.load()
        return String(cString: archive_version_details())
    } catch {
        return "libarchive unavailable (\(error.problem))"
    }
}

/// Everything that can go wrong in this module. `RunnerCore` converts it to `RunnerError`
/// (`RunnerError(archive:)`); every case names its input (the archive, the entry or the file)
/// and the problem, and most suggest a fix.
public enum ArchiveError: Error, Sendable, Hashable, CustomStringConvertible {
    /// libarchive returned a failure for `operation` (on `entry`, when there is one).
    case library(archive: String, entry: String?, operation: String, message: String)
    /// An entry broke a rule of the ``ExtractionPolicy``; nothing was written to the target.
    case refused(archive: String, entry: String, rule: ExtractionRule, detail: String)
    /// A system call failed.
    case system(path: String, operation: String, errno: Int32)
    /// A file to archive cannot be archived in the requested mode.
    case unsupportedSource(path: String, problem: String)
    /// The requested member is not in the archive.
    case memberNotFound(archive: String, member: String)
    /// The destination already exists and replacing it was not asked for.
    case destinationExists(path: String)
    /// A parameter the caller passed is not acceptable (e.g. a malformed SOURCE_DATE_EPOCH).
    case invalidArgument(name: String, problem: String)
    /// libarchive (`library`, the shared library's name) could not be loaded.
    case libraryUnavailable(library: String, problem: String)

    /// What the error is about: the entry (`archive: entry`), the archive, or the file.
    public var input: String {
        switch self {
        case .library(let archive, let entry, _, _):
            if let entry { return "\(archive): \(entry)" }
            return archive
        case .refused(let archive, let entry, _, _): return "\(archive): \(entry)"
        case .system(let path, _, _): return path
        case .unsupportedSource(let path, _): return path
        case .memberNotFound(let archive, _): return archive
        case .destinationExists(let path): return path
        case .invalidArgument(let name, _): return name
        case .libraryUnavailable(let library, _): return library
        }
    }

    /// What is wrong, as a sentence fragment.
    public var problem: String {
        switch self {
        case .library(_, _, let operation, let message):
            return "\(operation) failed: \(message)"
        case .refused(_, _, let rule, let detail):
            return "refused by rule '\(rule.rawValue)' (\(rule.summary))" + (detail.isEmpty ? "" : ": \(detail)")
        case .system(_, let operation, let code):
            return "\(operation): \(String(cString: strerror(code)))"
        case .unsupportedSource(_, let problem): return problem
        case .memberNotFound(_, let member): return "has no member named '\(member)'"
        case .destinationExists: return "already exists"
        case .invalidArgument(_, let problem): return problem
        case .libraryUnavailable(_, let problem): return problem
        }
    }

    /// What to do about it, when there is something to suggest.
    public var fix: String? {
        switch self {
        case .library(_, let entry, _, _):
            return entry == nil
                ? "check that the file is a complete tar archive (gzip, zstd, xz or uncompressed)"
                : "the archive is damaged or truncated: download or build it again"
        case .refused(_, _, let rule, _):
            return rule.isPolicyChoice
                ? "only extract archives from a trusted source with a policy that allows this"
                : "the archive is hostile or damaged: do not use it"
        case .system(_, _, let code):
            switch code {
            case EACCES, EPERM: return "check permissions (some operations need root)"
            case ENOSPC: return "free some disk space"
            case ENOENT: return "check that the path exists"
            default: return nil
            }
        case .unsupportedSource: return "remove the file from the tree or archive it in full-fidelity mode"
        case .memberNotFound: return "list the archive's entries to see what it holds"
        case .destinationExists: return "remove it first, or ask to replace it"
        case .invalidArgument: return nil
        case .libraryUnavailable: return "install libarchive 3.6 or later (Debian: apt-get install libarchive13)"
        }
    }

    /// Whether this is a safety refusal (an unsafe archive rather than a broken or unreadable one).
    public var isRefusal: Bool {
        if case .refused = self { return true }
        return false
    }

    public var description: String {
        var text = "\(input): \(problem)"
        if let fix { text += "\nfix: \(fix)" }
        return text
    }
}

/// libarchive converts names between UTF-8 (pax headers) and the C library's character set;
/// in the default "C" locale every non-ASCII name fails to convert. Archives are read and
/// written under `C.UTF-8` (set once for the process, for `LC_CTYPE` only, before the first
/// archive is opened).
let utf8LocaleReady: Bool = {
    setlocale(LC_CTYPE, "C.UTF-8") != nil || setlocale(LC_CTYPE, "C.utf8") != nil
}()

/// Where a libarchive call happened, for error messages.
struct ArchiveContext {
    var archive: String
    var entry: String?
}

/// The one place every libarchive return code goes through.
///
/// `ARCHIVE_OK` and `ARCHIVE_EOF` pass; `ARCHIVE_WARN` passes unless `warningIsError`
/// (writers treat a warning as a failure: a header that could not be written exactly is not
/// reproducible); anything else throws ``ArchiveError/library(archive:entry:operation:message:)``
/// with libarchive's own message.
@discardableResult
func check(
    _ code: Int32,
    _ archive: OpaquePointer?,
    _ operation: @autoclosure () -> String,
    _ context: ArchiveContext,
    warningIsError: Bool = false
) throws(ArchiveError) -> Int32 {
    if code == ARCHIVE_OK || code == ARCHIVE_EOF { return code }
    if code == ARCHIVE_WARN && !warningIsError { return code }
    throw ArchiveError.library(
        archive: context.archive, entry: context.entry, operation: operation(), message: libarchiveMessage(archive))
}

/// The same check for calls that return a byte count (`archive_write_data`, `archive_read_data`).
@discardableResult
func checkCount(
    _ count: Int,
    _ archive: OpaquePointer?,
    _ operation: @autoclosure () -> String,
    _ context: ArchiveContext
) throws(ArchiveError) -> Int {
    if count >= 0 { return count }
    try check(Int32(clamping: count), archive, operation(), context, warningIsError: true)
    return 0
}

func libarchiveMessage(_ archive: OpaquePointer?) -> String {
    guard let archive, let text = archive_error_string(archive) else { return "unknown libarchive error" }
    return String(cString: text)
}

/// A failed system call, with the current `errno`.
func systemError(_ operation: String, _ path: String) -> ArchiveError {
    .system(path: path, operation: operation, errno: errno)
}
