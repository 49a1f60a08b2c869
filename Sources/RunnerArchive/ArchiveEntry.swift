import CLibArchive

#if canImport(Glibc)
    import Glibc
#endif

/// The type of an archive entry.
public enum ArchiveEntryKind: String, Sendable, Hashable, CaseIterable {
    case regularFile = "file"
    case directory
    case symlink
    /// A hard link to an earlier entry (``ArchiveEntry/linkTarget``).
    case hardlink
    case characterDevice = "char-device"
    case blockDevice = "block-device"
    case fifo
    case socket

    /// The letter `ls -l` and `tar -tv` show for it.
    public var typeLetter: Character {
        switch self {
        case .regularFile: "-"
        case .directory: "d"
        case .symlink: "l"
        case .hardlink: "h"
        case .characterDevice: "c"
        case .blockDevice: "b"
        case .fifo: "p"
        case .socket: "s"
        }
    }
}

/// One extended attribute (`security.capability`, `user.foo`): a name and raw bytes.
public struct ExtendedAttribute: Sendable, Hashable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}

/// The header of one archive entry: what a reader yields and a writer writes.
public struct ArchiveEntry: Sendable, Hashable {
    /// The path inside the archive, as stored (`bin/runner-agent`, `./etc/passwd`).
    public var path: String
    public var kind: ArchiveEntryKind
    /// Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000).
    public var permissions: UInt32
    /// Bytes of content (regular files only; 0 otherwise).
    public var size: Int64
    public var uid: UInt32
    public var gid: UInt32
    /// Owner names, when the archive stores them.
    public var userName: String?
    public var groupName: String?
    /// Modification time in whole seconds since the epoch.
    public var modificationTime: Int64
    /// The target of a symlink, or the earlier entry a hardlink points at.
    public var linkTarget: String?
    /// Device numbers of character and block devices.
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32
    /// Extended attributes (pax `SCHILY.xattr.*` records).
    public var extendedAttributes: [ExtendedAttribute]

    public init(
        path: String,
        kind: ArchiveEntryKind,
        permissions: UInt32,
        size: Int64 = 0,
        uid: UInt32 = 0,
        gid: UInt32 = 0,
        userName: String? = nil,
        groupName: String? = nil,
        modificationTime: Int64 = 0,
        linkTarget: String? = nil,
        deviceMajor: UInt32 = 0,
        deviceMinor: UInt32 = 0,
        extendedAttributes: [ExtendedAttribute] = []
    ) {
        self.path = path
        self.kind = kind
        self.permissions = permissions
        self.size = size
        self.uid = uid
        self.gid = gid
        self.userName = userName
        self.groupName = groupName
        self.modificationTime = modificationTime
        self.linkTarget = linkTarget
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
        self.extendedAttributes = extendedAttributes
    }

    /// The mode string `ls -l` prints, e.g. `-rwxr-xr-x` or `drwsr-x---`.
    public var modeString: String {
        var text = String(kind == .hardlink ? "-" : kind.typeLetter)
        let p = permissions
        let triplets: [(UInt32, UInt32, Character, Character)] = [
            (6, 0o4000, "s", "S"), (3, 0o2000, "s", "S"), (0, 0o1000, "t", "T"),
        ]
        for (shift, special, withExec, withoutExec) in triplets {
            let bits = (p >> shift) & 7
            text.append(bits & 4 != 0 ? "r" : "-")
            text.append(bits & 2 != 0 ? "w" : "-")
            if p & special != 0 {
                text.append(bits & 1 != 0 ? withExec : withoutExec)
            } else {
                text.append(bits & 1 != 0 ? "x" : "-")
            }
        }
        return text
    }
}

// MARK: - libarchive conversions

/// The file type bits of `st_mode`, which are also libarchive's `AE_IF*` values (the C macros
/// carry casts Swift does not import).
enum FileTypeBits {
    static let mask: UInt32 = 0o170000
    static let reg: UInt32 = 0o100000
    static let dir: UInt32 = 0o040000
    static let lnk: UInt32 = 0o120000
    static let chr: UInt32 = 0o020000
    static let blk: UInt32 = 0o060000
    static let fifo: UInt32 = 0o010000
    static let sock: UInt32 = 0o140000
}

extension ArchiveEntryKind {
    /// libarchive's `AE_IF*` constant (hardlinks are regular-file entries with a link target).
    var fileType: UInt32 {
        switch self {
        case .regularFile, .hardlink: FileTypeBits.reg
        case .directory: FileTypeBits.dir
        case .symlink: FileTypeBits.lnk
        case .characterDevice: FileTypeBits.chr
        case .blockDevice: FileTypeBits.blk
        case .fifo: FileTypeBits.fifo
        case .socket: FileTypeBits.sock
        }
    }

    /// The `S_IF*` type of a `stat` mode, or nil for an unknown type.
    init?(statMode mode: UInt32) {
        switch mode & FileTypeBits.mask {
        case FileTypeBits.reg: self = .regularFile
        case FileTypeBits.dir: self = .directory
        case FileTypeBits.lnk: self = .symlink
        case FileTypeBits.chr: self = .characterDevice
        case FileTypeBits.blk: self = .blockDevice
        case FileTypeBits.fifo: self = .fifo
        case FileTypeBits.sock: self = .socket
        default: return nil
        }
    }
}

/// A C string from libarchive as Swift text; nil when absent or not valid UTF-8.
func text(_ pointer: UnsafePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    return String(validatingCString: pointer)
}

extension ArchiveEntry {
    /// Reads the header libarchive decoded. `nil` path means the name is not valid UTF-8.
    static func decode(_ entry: OpaquePointer, withExtendedAttributes: Bool) -> (ArchiveEntry, rawPathIsValid: Bool) {
        let rawPath = text(archive_entry_pathname_utf8(entry)) ?? text(archive_entry_pathname(entry))
        let hardlink = text(archive_entry_hardlink_utf8(entry)) ?? text(archive_entry_hardlink(entry))
        let kind: ArchiveEntryKind
        if archive_entry_hardlink(entry) != nil {
            kind = .hardlink
        } else {
            switch UInt32(archive_entry_filetype(entry)) {
            case FileTypeBits.reg: kind = .regularFile
            case FileTypeBits.dir: kind = .directory
            case FileTypeBits.lnk: kind = .symlink
            case FileTypeBits.chr: kind = .characterDevice
            case FileTypeBits.blk: kind = .blockDevice
            case FileTypeBits.fifo: kind = .fifo
            case FileTypeBits.sock: kind = .socket
            default: kind = .regularFile
            }
        }
        var linkTarget: String?
        switch kind {
        case .symlink: linkTarget = text(archive_entry_symlink_utf8(entry)) ?? text(archive_entry_symlink(entry)) ?? ""
        case .hardlink: linkTarget = hardlink ?? ""
        default: linkTarget = nil
        }
        var attributes: [ExtendedAttribute] = []
        if withExtendedAttributes && archive_entry_xattr_reset(entry) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK {
                guard let name, let attributeName = String(validatingCString: name) else { continue }
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                attributes.append(ExtendedAttribute(name: attributeName, value: bytes))
            }
        }
        let decoded = ArchiveEntry(
            path: rawPath ?? "",
            kind: kind,
            permissions: UInt32(archive_entry_perm(entry)) & 0o7777,
            size: kind == .regularFile ? archive_entry_size(entry) : 0,
            uid: UInt32(truncatingIfNeeded: archive_entry_uid(entry)),
            gid: UInt32(truncatingIfNeeded: archive_entry_gid(entry)),
            userName: text(archive_entry_uname_utf8(entry)) ?? text(archive_entry_uname(entry)),
            groupName: text(archive_entry_gname_utf8(entry)) ?? text(archive_entry_gname(entry)),
            modificationTime: Int64(archive_entry_mtime(entry)),
            linkTarget: linkTarget,
            deviceMajor: UInt32(truncatingIfNeeded: archive_entry_rdevmajor(entry)),
            deviceMinor: UInt32(truncatingIfNeeded: archive_entry_rdevminor(entry)),
            extendedAttributes: attributes
        )
        return (decoded, rawPath != nil)
    }

    /// Fills a libarchive entry (cleared first) from this header.
    func encode(into entry: OpaquePointer) {
        archive_entry_clear(entry)
        archive_entry_set_pathname_utf8(entry, path)
        archive_entry_set_filetype(entry, kind.fileType)
        archive_entry_set_perm(entry, permissions & 0o7777)
        archive_entry_set_uid(entry, la_int64_t(uid))
        archive_entry_set_gid(entry, la_int64_t(gid))
        if let userName { archive_entry_set_uname_utf8(entry, userName) }
        if let groupName { archive_entry_set_gname_utf8(entry, groupName) }
        archive_entry_set_mtime(entry, time_t(modificationTime), 0)
        switch kind {
        case .regularFile:
            archive_entry_set_size(entry, size)
        case .symlink:
            archive_entry_set_symlink_utf8(entry, linkTarget ?? "")
        case .hardlink:
            archive_entry_set_hardlink_utf8(entry, linkTarget ?? "")
            archive_entry_set_size(entry, 0)
        case .characterDevice, .blockDevice:
            archive_entry_set_rdevmajor(entry, dev_t(deviceMajor))
            archive_entry_set_rdevminor(entry, dev_t(deviceMinor))
        case .directory, .fifo, .socket:
            break
        }
        for attribute in extendedAttributes {
            attribute.value.withUnsafeBytes { raw in
                archive_entry_xattr_add_entry(entry, attribute.name, raw.baseAddress, raw.count)
            }
        }
    }
}
