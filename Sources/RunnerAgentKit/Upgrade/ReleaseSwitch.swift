import RunnerCore
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The two release links of a host: `current` (what runs) and `previous` (what `rollback`
/// returns to), each a relative symlink `releases/<version>` replaced with one rename. A version
/// counts only when its release directory holds a `MANIFEST.json`.
struct ReleaseSwitch: Sendable {
    /// Which release each link names.
    struct Links: Sendable, Hashable {
        var current: String
        var previous: String?
    }

    var layout: HostLayout

    /// The version `current` points at, or nil.
    var current: String? { version(at: layout.currentRelease) }
    /// The version `previous` points at, or nil.
    var previous: String? { version(at: layout.previousRelease) }

    /// Both links, or nil when `current` names no release.
    var links: Links? { current.map { Links(current: $0, previous: previous) } }

    /// Whether `releases/<version>` is an unpacked release.
    func hasRelease(_ version: String) -> Bool {
        FilePaths.exists(layout.releaseDirectory(version) + "/" + BundleManifest.fileName)
    }

    func version(at link: String) -> String? {
        guard let target = SymbolicLink.target(link), target.hasPrefix("releases/") else { return nil }
        let version = FilePaths.basename(target)
        return hasRelease(version) ? version : nil
    }

    /// Points `previous`, then `current`, at their releases (`previous` nil: removed). In that
    /// order, so a kill in between leaves `previous` = `current`, never a `previous` that skips
    /// the release that ran last.
    func point(_ links: Links) throws(RunnerError) {
        if let previous = links.previous {
            try HostFiles.symlink(layout.previousRelease, to: "releases/" + previous)
        } else if unlink(layout.previousRelease) != 0 && errno != ENOENT {
            throw RunnerError.posix("could not remove", layout.previousRelease, fix: nil)
        }
        try HostFiles.symlink(layout.currentRelease, to: "releases/" + links.current)
    }

    /// Removes every release directory but `current` and `previous` (and what a killed unpack
    /// left); returns the versions removed.
    func prune() -> [String] {
        HostFiles.sweepLeftovers(in: layout.releasesDirectory)
        let keep = Set([current, previous].compactMap { $0 })
        guard !keep.isEmpty else { return [] }
        var removed: [String] = []
        for name in FilePaths.entries(of: layout.releasesDirectory).sorted()
        where !name.hasPrefix(".") && !keep.contains(name) {
            if (try? FilePaths.remove(layout.releaseDirectory(name))) != nil { removed.append(name) }
        }
        return removed
    }
}
