import CLibArchive

#if canImport(Glibc)
    import Glibc
#endif

/// `SOURCE_DATE_EPOCH`: the one timestamp reproducible archives carry.
public enum SourceDateEpoch {
    /// Used when `SOURCE_DATE_EPOCH` is unset: 2025-01-01T00:00:00Z (`ci/release` uses the last
    /// commit's time instead).
    public static let defaultValue: Int64 = 1_735_689_600

    /// Parses a `SOURCE_DATE_EPOCH` value: whole seconds since the epoch, decimal, ≥ 0.
    public static func parse(_ text: String) throws(ArchiveError) -> Int64 {
        guard !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }), let value = Int64(text) else {
            throw .invalidArgument(
                name: "SOURCE_DATE_EPOCH",
                problem: "'\(text)' is not a whole number of seconds since 1970-01-01 (e.g. $(git log -1 --format=%ct))"
            )
        }
        return value
    }

    /// `SOURCE_DATE_EPOCH` from the environment, or ``defaultValue`` when unset or empty.
    public static func fromEnvironment() throws(ArchiveError) -> Int64 {
        guard let raw = getenv("SOURCE_DATE_EPOCH") else { return defaultValue }
        let text = String(cString: raw)
        return text.isEmpty ? defaultValue : try parse(text)
    }
}

/// One member of a reproducible archive: where it goes in the archive and where its content
/// comes from.
public struct ArchiveMember: Sendable, Hashable {
    public enum Content: Sendable, Hashable {
        /// A regular file read from this path on disk (symlinks are followed).
        case file(String)
        /// A regular file with these bytes.
        case bytes([UInt8])
        case directory
        /// A symlink with this target.
        case symlink(String)
    }

    /// The path inside the archive (relative, no `..`).
    public var path: String
    public var content: Content
    /// Permission bits; nil means normalised: 0755 for directories and for files with any
    /// execute bit on disk, 0644 for other files, 0777 for symlinks.
    public var permissions: UInt32?

    public init(path: String, content: Content, permissions: UInt32? = nil) {
        self.path = path
        self.content = content
        self.permissions = permissions
    }
}

/// Reproducible archives: the same members and `SOURCE_DATE_EPOCH` give the same bytes, in
/// whatever order the members are given.
///
/// Entries are sorted bytewise by path (after ``Options/leadingPaths``), in restricted pax,
/// owned by uid/gid 0 named `root`, with mtime = `SOURCE_DATE_EPOCH` in whole seconds and no
/// atime, ctime or birth time; modes are normalised; gzip carries no timestamp and uses a fixed
/// level. Regular files, directories and symlinks only.
public enum ReproducibleArchive {
    public struct Options: Sendable, Hashable {
        /// The mtime of every entry.
        public var modificationTime: Int64
        public var compression: ArchiveCompression
        /// Paths written first, in this order (e.g. `MANIFEST.json`); the rest follow sorted.
        public var leadingPaths: [String]
        /// Add a directory entry (0755) for every parent that has no member of its own.
        public var addParentDirectories: Bool

        public init(
            modificationTime: Int64 = SourceDateEpoch.defaultValue,
            compression: ArchiveCompression = .defaultGzip,
            leadingPaths: [String] = [],
            addParentDirectories: Bool = true
        ) {
            self.modificationTime = modificationTime
            self.compression = compression
            self.leadingPaths = leadingPaths
            self.addParentDirectories = addParentDirectories
        }
    }

    /// Writes `members` to the archive file `path` (temporary file + rename).
    @discardableResult
    public static func write(
        _ members: [ArchiveMember],
        to path: String,
        options: Options,
        replaceExisting: Bool = false
    ) throws(ArchiveError) -> ArchiveSummary {
        let ordered = try order(members, options: options, archive: path)
        return try ArchiveFile.write(to: path, compression: options.compression, replaceExisting: replaceExisting) {
            (writer) throws(ArchiveError) in
            for member in ordered {
                try write(member, to: writer, modificationTime: options.modificationTime)
            }
            return ArchiveSummary(entries: writer.entryCount, contentBytes: writer.contentBytes)
        }
    }

    /// The members in archive order, validated, with parent directories added.
    static func order(_ members: [ArchiveMember], options: Options, archive: String) throws(ArchiveError)
        -> [ArchiveMember]
    {
        var byPath: [String: ArchiveMember] = [:]
        for var member in members {
            let normal: String
            do throws(ExtractionRule) {
                normal = try ArchivePath.normalized(member.path)
            } catch {
                throw .invalidArgument(name: member.path, problem: "is not a valid archive path (\(error.summary))")
            }
            if normal.isEmpty {
                throw .invalidArgument(name: member.path, problem: "is not a valid archive path (it names the root)")
            }
            member.path = normal
            if byPath[normal] != nil {
                throw .invalidArgument(name: normal, problem: "is given twice")
            }
            byPath[normal] = member
        }
        if options.addParentDirectories {
            for path in Array(byPath.keys) {
                var parent = FileSystem.parentDirectory(path)
                while parent != "." {
                    if let existing = byPath[parent] {
                        guard existing.content == .directory else {
                            throw .invalidArgument(name: parent, problem: "is a parent of \(path) but not a directory")
                        }
                        break
                    }
                    byPath[parent] = ArchiveMember(path: parent, content: .directory)
                    parent = FileSystem.parentDirectory(parent)
                }
            }
        }
        var leading: [ArchiveMember] = []
        for path in options.leadingPaths {
            guard let normal = try? ArchivePath.normalized(path), let member = byPath.removeValue(forKey: normal) else {
                throw .invalidArgument(name: path, problem: "is to be written first but is not a member")
            }
            leading.append(member)
        }
        let rest = byPath.values.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        return leading + rest
    }

    static func write(_ member: ArchiveMember, to writer: ArchiveWriter, modificationTime: Int64) throws(ArchiveError) {
        var header = ArchiveEntry(
            path: member.path, kind: .regularFile, permissions: 0o644, uid: 0, gid: 0, userName: "root",
            groupName: "root", modificationTime: modificationTime)
        switch member.content {
        case .directory:
            header.kind = .directory
            header.permissions = member.permissions ?? 0o755
            try writer.writeHeader(header)
        case .symlink(let target):
            header.kind = .symlink
            header.permissions = member.permissions ?? 0o777
            header.linkTarget = target
            try writer.writeHeader(header)
        case .bytes(let bytes):
            header.permissions = member.permissions ?? 0o644
            try writer.write(header, contents: bytes)
        case .file(let source):
            let fd = open(source, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw systemError("could not open", source) }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw systemError("could not stat", source) }
            guard UInt32(st.st_mode) & FileTypeBits.mask == FileTypeBits.reg else {
                throw .unsupportedSource(path: source, problem: "is not a regular file")
            }
            header.permissions = member.permissions ?? ((UInt32(st.st_mode) & 0o111) != 0 ? 0o755 : 0o644)
            header.size = Int64(st.st_size)
            try writer.write(header, copyingFrom: fd, sourcePath: source)
        }
    }
}

/// What an archive writer wrote.
public struct ArchiveSummary: Sendable, Hashable {
    public var entries: Int
    /// Bytes of file content, before compression.
    public var contentBytes: Int64

    public init(entries: Int, contentBytes: Int64) {
        self.entries = entries
        self.contentBytes = contentBytes
    }
}
