import FoundationEssentials
import Logging
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// One imported version of a guest base image in the host store.
public struct InstalledImage: Sendable, Hashable {
    /// The image's name (`debian-bookworm`).
    public var name: String
    /// The sha256 of the archive it was imported from: the name of its version directory.
    public var digest: String
    /// The read-only tree a guest boots from: `/var/lib/runner/images/<name>/<digest>/rootfs`.
    ///
    /// This path names one version and stays valid while that version is kept (the active
    /// one, and the one before it until the next import succeeds), so a guest booted from it
    /// is not disturbed by an import that switches `current`.
    public var rootfs: String
    /// The bake manifest, when the image was imported with one.
    public var manifest: RootfsManifest?
}
