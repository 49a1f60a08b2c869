import RunnerArchive

#if canImport(Glibc)
    import Glibc
#endif

extension RunnerError {
    /// The boundary conversion from the archive layer's error: same input (archive and entry),
    /// problem and fix, with a code by kind (refusals are ``Code/unsafeInput``, broken
    /// archives ``Code/integrity``, a host without libarchive ``Code/unsupported``).
    public init(archive error: ArchiveError) {
        let code: Code =
            switch error {
            case .library: .integrity
            case .refused: .unsafeInput
            case .system(_, _, let number): number == EACCES || number == EPERM ? .permission : .io
            case .unsupportedSource, .invalidArgument: .invalidInput
            case .memberNotFound: .notFound
            case .destinationExists: .alreadyExists
            case .libraryUnavailable: .unsupported
            }
        self.init(code, input: error.input, problem: error.problem, fix: error.fix, underlying: nil)
    }
}

/// Runs `body`, converting an ``ArchiveError`` to a ``RunnerError``.
public func withArchiveErrors<T>(_ body: () throws(ArchiveError) -> T) throws(RunnerError) -> T {
    do {
        return try body()
    } catch {
        throw RunnerError(archive: error)
    }
}
