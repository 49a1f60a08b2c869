/// Every path the appliance uses on a host, derived from one root.
///
/// Production uses `HostLayout()` (root `/`); tests use `HostLayout(root: tempDir)` so the
/// installer, the image store and the hook run against a throwaway tree. No other code
/// spells a host path.
public struct HostLayout: Sendable, Hashable {
    /// The directory everything else hangs under; `/` on a real host.
    public let root: String

    public init(root: String = "/") {
        precondition(root.hasPrefix("/"), "HostLayout root must be absolute")
        var root = root
        while root.utf8.count > 1 && root.utf8.last == UInt8(ascii: "/") { root.removeLast() }
        self.root = root
    }

    /// Joins an absolute host path onto ``root``.
    public func path(_ absolute: String) -> String {
        precondition(absolute.hasPrefix("/"), "host paths are absolute")
        return root == "/" ? absolute : root + absolute
    }

    // MARK: Configuration

    /// `/etc/runner`: configuration (0700 root).
    public var configDirectory: String { path("/etc/runner") }
    /// `/etc/runner/config.env`: the runtime configuration (0600 root).
    public var configFile: String { path("/etc/runner/config.env") }

    // MARK: Installed code

    /// `/usr/local/lib/runner`: installed scripts.
    public var libDirectory: String { path("/usr/local/lib/runner") }
    /// `/usr/local/lib/runner/lib`: shared shell helpers.
    public var shellLibDirectory: String { path("/usr/local/lib/runner/lib") }
    /// `/usr/local/lib/runner/releases`: unpacked bundles, one directory per version.
    public var releasesDirectory: String { path("/usr/local/lib/runner/releases") }
    /// `/usr/local/lib/runner/releases/<version>`.
    public func releaseDirectory(_ version: String) -> String { releasesDirectory + "/" + version }
    /// `/usr/local/lib/runner/current`: symlink to the active release, swapped atomically.
    public var currentRelease: String { path("/usr/local/lib/runner/current") }
    /// `/usr/local/lib/runner/bootstrap.sh`.
    public var bootstrapScript: String { path("/usr/local/lib/runner/bootstrap.sh") }
    /// `/usr/local/lib/runner/runner-service.sh`.
    public var serviceScript: String { path("/usr/local/lib/runner/runner-service.sh") }
    /// `/usr/local/lib/runner/container-hooks.sh`: what `ACTIONS_RUNNER_CONTAINER_HOOKS` names.
    public var containerHooksScript: String { path("/usr/local/lib/runner/container-hooks.sh") }
    /// `/usr/local/bin/ci-nspawn-run`: the privileged guest helper.
    public var guestHelper: String { path("/usr/local/bin/ci-nspawn-run") }
    /// `/usr/local/bin/runner-agent`: the agent of the active release on `PATH`
    /// (`sudo runner-agent doctor`).
    public var agentCommand: String { path("/usr/local/bin/runner-agent") }
    /// `/etc/systemd/system`: where our units go.
    public var systemdUnitDirectory: String { path("/etc/systemd/system") }
    /// `/etc/sudoers.d/runner`: the rule that lets the runner user call `ci-nspawn-run`.
    public var sudoersRule: String { path("/etc/sudoers.d/runner") }

    // MARK: State

    /// `/var/lib/runner`: persistent state.
    public var stateDirectory: String { path("/var/lib/runner") }
    /// `/var/lib/runner/installed`: the install marker, written last.
    public var installedMarker: String { path("/var/lib/runner/installed") }
    /// `/var/lib/runner/images`: base rootfs trees for guests.
    public var imagesDirectory: String { path("/var/lib/runner/images") }
    /// `/var/lib/runner/images/<name>`: every imported version of one image.
    ///
    /// Inside it: `<digest>/rootfs/` (the read-only tree guests boot from),
    /// `<digest>/manifest.json` (the bake manifest, when imported with one), and `current`,
    /// a symlink to the active `<digest>` that an import swaps atomically.
    public func imageDirectory(_ name: String) -> String { imagesDirectory + "/" + name }
    /// `/var/lib/runner/images/<name>/current`: symlink to the active version.
    public func currentImage(_ name: String) -> String { imageDirectory(name) + "/current" }
    /// `/var/lib/runner/images/<name>/current/rootfs`: the tree a guest of `name` boots from.
    public func imageRootfs(_ name: String) -> String { currentImage(name) + "/rootfs" }
    /// `/var/lib/runner/images/.oci`: images pulled from registries (a name no baked image can
    /// take: baked names never start with a dot).
    public var ociDirectory: String { imagesDirectory + "/.oci" }
    /// `/var/lib/runner/images/.oci/blobs/sha256`: manifests, configs and layers, each in a file
    /// named after the hex of its verified sha256 digest.
    public var ociBlobsDirectory: String { ociDirectory + "/blobs/sha256" }
    /// `/var/lib/runner/images/.oci/blobs/sha256/<hex>`: one verified blob.
    public func ociBlob(_ hex: String) -> String { ociBlobsDirectory + "/" + hex }
    /// `/var/lib/runner/images/.oci/trees`: unpacked images, one per manifest digest.
    public var ociTreesDirectory: String { ociDirectory + "/trees" }
    /// `/var/lib/runner/images/.oci/trees/<manifest-hex>`: one unpacked image: `rootfs/` (the
    /// read-only tree, owners already shifted to the guests' range), `config.json` (the image's
    /// verified OCI config blob, as the registry served it) and `image.json` (reference, digest,
    /// size, last use).
    public func ociTree(_ manifestHex: String) -> String { ociTreesDirectory + "/" + manifestHex }
    /// `/var/lib/runner/images/.oci/pins`: who holds which image now. One file per holder and
    /// image, `<manifest-hex>.<pid>.<start time>`, listing the blobs the image needs: while the
    /// holder (a pull, or a job's owner process) lives, the budget and `image remove` keep them.
    public var ociPinsDirectory: String { ociDirectory + "/pins" }
    /// `/var/lib/runner/work`: the GitHub runner's work directory (jobs' workspaces) when
    /// `RUNNER_WORK_DIR` does not name another (``ConfigKey/Defaults`` takes its default from here).
    public static let defaultWorkDirectory = "/var/lib/runner/work"
    /// ``defaultWorkDirectory`` under ``root``.
    public var workDirectory: String { path(Self.defaultWorkDirectory) }
    /// `/run/runner/admin.lock`: held (`flock`) by `install`, `upgrade` and `rollback` while they
    /// change the host, so only one runs at a time.
    public var adminLock: String { path("/run/runner/admin.lock") }
    /// `/var/cache/runner`: downloads (bundles, runner tarballs).
    public var cacheDirectory: String { path("/var/cache/runner") }
    /// `/opt/actions-runner`: the GitHub runner package.
    public var runnerDirectory: String { path("/opt/actions-runner") }
}
