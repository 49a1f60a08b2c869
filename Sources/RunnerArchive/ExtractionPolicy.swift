/// The safety rules an extraction enforces. An archive is hostile until it has been extracted
/// under a policy: each entry is checked before anything is written for it, and the first
/// broken rule stops the extraction with ``ArchiveError/refused(archive:entry:rule:detail:)``.
public enum ExtractionRule: String, Error, Sendable, Hashable, CaseIterable {
    case absolutePath = "absolute-path"
    case parentComponent = "dot-dot"
    case invalidName = "invalid-name"
    case throughSymlink = "through-symlink"
    case notADirectory = "not-a-directory"
    case symlinkEscape = "symlink-escape"
    case hardlinkEscape = "hardlink-escape"
    case deviceNode = "device-node"
    case fifo
    case socket
    case setuidSetgid = "setuid-setgid"
    case entryTooLarge = "entry-size"
    case totalTooLarge = "total-size"
    case tooManyEntries = "entry-count"
    case duplicateEntry = "duplicate-entry"
    case unmappedOwner = "unmapped-owner"

    /// The rule in words.
    public var summary: String {
        switch self {
        case .absolutePath: "entry paths must be relative"
        case .parentComponent: "entry paths must not contain '..'"
        case .invalidName: "entry paths must be non-empty UTF-8"
        case .throughSymlink: "no entry may pass through a symlink"
        case .notADirectory: "an entry's parent must be a directory"
        case .symlinkEscape: "symlinks must resolve inside the target"
        case .hardlinkEscape: "hardlinks must point at a file extracted earlier inside the target"
        case .deviceNode: "device nodes are not allowed"
        case .fifo: "fifos are not allowed"
        case .socket: "sockets are not allowed"
        case .setuidSetgid: "setuid and setgid bits are not allowed"
        case .entryTooLarge: "entries must not exceed the size cap"
        case .totalTooLarge: "the archive must not exceed the total size cap"
        case .tooManyEntries: "the archive must not exceed the entry count cap"
        case .duplicateEntry: "an entry must not replace an earlier one"
        case .unmappedOwner: "owners must fit the guests' user-namespace range"
        }
    }

    /// Whether a policy may allow what this rule refuses (as opposed to an escape, which
    /// every policy refuses).
    public var isPolicyChoice: Bool {
        switch self {
        case .deviceNode, .fifo, .setuidSetgid, .entryTooLarge, .totalTooLarge, .tooManyEntries: true
        default: false
        }
    }
}

/// What an extraction allows beyond plain files, directories and inward symlinks.
///
/// ``default`` is for archives from the network (bundles, runner tarballs): no ownership,
/// no device nodes, fifos or setuid/setgid bits, no extended attributes, no absolute symlinks,
/// size caps. ``rootfs`` is for guest root file systems: it restores numeric ownership,
/// device nodes, fifos, setuid/setgid bits and extended attributes (file capabilities), and keeps
/// absolute symlinks (they resolve inside the guest) — but it refuses every escape all the same:
/// absolute entry paths, `..`, entries through symlinks, relative symlinks and hardlinks that
/// leave the target. Sockets are refused by every policy.
public struct ExtractionPolicy: Sendable, Hashable {
    /// How absolute symlink targets (`/usr/bin/x`) are treated.
    public enum AbsoluteSymlinks: Sendable, Hashable {
        /// Refused: on the host they point outside the target.
        case refuse
        /// Kept: the target is a root file system, where they resolve inside it (as in a chroot).
        case rootedAtTarget
    }

    /// Apply the entries' numeric uid/gid (needs root). Otherwise files belong to the caller.
    public var applyOwnership: Bool
    /// Create character and block devices (needs root).
    public var allowDeviceNodes: Bool
    /// Create fifos.
    public var allowFifos: Bool
    /// Keep setuid/setgid bits (otherwise such entries are refused).
    public var allowSetuidSetgid: Bool
    /// Restore extended attributes (e.g. `security.capability`); otherwise they are ignored.
    public var applyExtendedAttributes: Bool
    public var absoluteSymlinks: AbsoluteSymlinks
    /// Restore entries' modification times.
    public var restoreModificationTimes: Bool
    /// The largest regular file allowed, in bytes.
    public var maxEntrySize: Int64
    /// The most bytes of content allowed in total.
    public var maxTotalSize: Int64
    /// The most entries allowed.
    public var maxEntries: Int

    public init(
        applyOwnership: Bool = false,
        allowDeviceNodes: Bool = false,
        allowFifos: Bool = false,
        allowSetuidSetgid: Bool = false,
        applyExtendedAttributes: Bool = false,
        absoluteSymlinks: AbsoluteSymlinks = .refuse,
        restoreModificationTimes: Bool = true,
        maxEntrySize: Int64 = 2 << 30,
        maxTotalSize: Int64 = 8 << 30,
        maxEntries: Int = 1_000_000
    ) {
        self.applyOwnership = applyOwnership
        self.allowDeviceNodes = allowDeviceNodes
        self.allowFifos = allowFifos
        self.allowSetuidSetgid = allowSetuidSetgid
        self.applyExtendedAttributes = applyExtendedAttributes
        self.absoluteSymlinks = absoluteSymlinks
        self.restoreModificationTimes = restoreModificationTimes
        self.maxEntrySize = maxEntrySize
        self.maxTotalSize = maxTotalSize
        self.maxEntries = maxEntries
    }

    /// For untrusted archives: files, directories and inward relative symlinks/hardlinks only;
    /// 2 GiB per entry, 8 GiB and 1,000,000 entries in total.
    public static let `default` = ExtractionPolicy()

    /// For guest root file systems: ownership, device nodes, fifos, setuid/setgid, xattrs and
    /// absolute symlinks (rooted at the target); every escape still refused. 8 GiB per entry,
    /// 64 GiB and 4,000,000 entries in total. Needs root.
    public static let rootfs = ExtractionPolicy(
        applyOwnership: true,
        allowDeviceNodes: true,
        allowFifos: true,
        allowSetuidSetgid: true,
        applyExtendedAttributes: true,
        absoluteSymlinks: .rootedAtTarget,
        maxEntrySize: 8 << 30,
        maxTotalSize: 64 << 30,
        maxEntries: 4_000_000
    )
}

/// Entry path checks shared by the extractor and the member lookup.
public enum ArchivePath {
    /// The components of an entry path, with `.` and empty components dropped
    /// (`./a//b/` → `["a", "b"]`; `./` → `[]`, the root). Throws the rule it breaks.
    public static func components(_ path: String) throws(ExtractionRule) -> [Substring] {
        if path.isEmpty { throw .invalidName }
        if path.hasPrefix("/") { throw .absolutePath }
        var result: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." { throw .parentComponent }
            result.append(component)
        }
        return result
    }

    /// The normal form of an entry path (`./a//b/` → `a/b`; the root is ``""``).
    public static func normalized(_ path: String) throws(ExtractionRule) -> String {
        try components(path).joined(separator: "/")
    }

    /// Whether a symlink at `linkDirectory` (the components of its parent) with `target`
    /// stays inside the tree. `..` is allowed only as a leading run (it then climbs real
    /// directories of the tree, so lexical and physical resolution agree); absolute targets
    /// only when `rooted`, and then resolve from the tree's root.
    public static func symlinkStaysInside(linkDirectory: [Substring], target: String, rooted: Bool) -> Bool {
        if target.isEmpty { return false }
        var depth: Int
        if target.hasPrefix("/") {
            guard rooted else { return false }
            depth = 0
        } else {
            depth = linkDirectory.count
        }
        var descended = false
        for component in target.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                if descended || depth == 0 { return false }
                depth -= 1
            } else {
                descended = true
                depth += 1
            }
        }
        return true
    }
}
