import FoundationEssentials
import Logging
import RunnerCore
import RunnerImages
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// What the privileged guest helper allows, decided by the administrator (config.env) and
/// the host layout, never by the caller.
public struct GuestPolicy: Sendable {
    public var layout: HostLayout
    /// The runner's work directory (`RUNNER_WORK_DIR`): bindable, and its contents are handed
    /// back to ``workOwner`` after each step.
    public var workDirectory: String
    /// Roots a bind source must be inside. Each is opened from the layout root without following
    /// links in directories others can write; sources are resolved below them without
    /// following any link (``TrustedPath``).
    public var allowedMountRoots: [String]
    /// Who owns what steps leave under ``workDirectory``; nil: the owner of the work directory.
    public var workOwner: (uid: UInt32, gid: UInt32)?
    public var backend: GuestBackend
    /// How long a guest may take to report READY=1.
    public var bootTimeout: Double = 60
    /// The guests' user namespace (`RUNNER_GUEST_USERNS=on`, the default): guest root is host
    /// UID ``GuestUserNamespace/base``; images are shifted into the range; caller binds are
    /// idmapped (``GuestBind/OwnerMapping/rootIDMap``) and the after-step ownership walk is not
    /// needed. nil: guest root is host root (today's behaviour before issue #10).
    public var userNamespace: GuestUserNamespace? = .standard
    /// Per-guest cgroups for user-namespaced guests on the direct backend.
    public var cgroups = GuestCgroups()
    /// Job slices (machined backend), which carry a job's limits.
    public var slices = JobSlices()
    /// Capabilities (`CAP_X`) a job may add to its step units (`RUNNER_GUEST_CAP_ADD`).
    public var allowedCapabilities: [String] = []
    /// A private network per job (`RUNNER_GUEST_NETWORK=private`, the default); nil: guests share
    /// the host's network.
    public var network: GuestNetworkPolicy?
    /// Each guest's ceilings (`RUNNER_JOB_MEMORY_MAX`, `RUNNER_JOB_CPUS`, `RUNNER_JOB_TASKS_MAX`);
    /// a job may ask for less (`--memory`, `--cpus`).
    public var limits = GuestLimits()

    public init(
        layout: HostLayout, workDirectory: String? = nil, extraMountRoots: [String] = [],
        workOwner: (uid: UInt32, gid: UInt32)? = nil, backend: GuestBackend = .direct
    ) {
        self.layout = layout
        let work = workDirectory ?? layout.workDirectory
        self.workDirectory = work
        self.allowedMountRoots = [work, layout.runnerExternalsDirectory] + extraMountRoots
        self.workOwner = workOwner
        self.backend = backend
    }

    /// The rootfs of a local image (``ImageStore/resolve(_:)``), refusing names that are not
    /// plain store names and trees that resolve outside the store. Its owners are in
    /// ``userNamespace``'s range when this returns (``ImageOwnership/ensure``): `busy` says
    /// whether guests still run from a tree that would need shifting.
    func imageRootfs(_ image: String, busy: (String) -> Bool = { _ in false }) throws(RunnerError) -> String {
        if let hex = Self.registryTreeDigest(image) {
            return try registryImage(hex, busy: busy).rootfs
        }
        let validChars = image.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
        guard !image.isEmpty, image.count <= 128, validChars, !image.hasPrefix("."), !image.hasPrefix("-") else {
            throw RunnerError(
                .invalidInput, input: image, problem: "is not an image name of the local store",
                fix: "use one of: \(availableImages().joined(separator: ", "))")
        }
        let rootfs = try ImageStore(layout: layout).resolve(image).rootfs
        guard let real = Self.realPath(rootfs), let store = Self.realPath(layout.imagesDirectory),
            real.hasPrefix(store + "/")
        else {
            throw RunnerError(
                .notFound, input: image, problem: "is not in the local image store (\(layout.imagesDirectory))",
                fix: "use one of: \(availableImages().joined(separator: ", ")), or import the image first")
        }
        try ImageOwnership.ensure(
            version: FilePaths.parent(of: real), userNamespace: userNamespace,
            logger: Logger(label: "runner.images"), busy: { busy(real) })
        return real
    }

    /// The hex digest of a registry tree reference (`sha256:` + 64 lowercase hex digits), or nil
    /// when `image` is not one.
    package static func registryTreeDigest(_ image: String) -> String? {
        guard image.hasPrefix("sha256:") else { return nil }
        let hex = image.dropFirst(7)
        guard hex.count == 64, hex.allSatisfy({ $0.isASCII && ($0.isNumber || ("a"..."f").contains($0)) }) else {
            return nil
        }
        return String(hex)
    }

    /// A registry image unpacked in the content store (``HostLayout/ociTree(_:)``): its rootfs,
    /// refused unless it resolves inside the store, and its configuration (`config.json`, the
    /// verified blob the puller wrote). Its owners are in ``userNamespace``'s range: a tree whose
    /// `userns` marker says otherwise is shifted as a baked image is; a tree without a marker is
    /// in the standard range, as the puller leaves it.
    func registryImage(_ hex: String, busy: (String) -> Bool = { _ in false }) throws(RunnerError) -> (
        rootfs: String, config: OCIImageConfig
    ) {
        let input = "sha256:" + hex
        let tree = layout.ociTree(hex)
        guard let real = Self.realPath(tree + "/rootfs"), let store = Self.realPath(layout.imagesDirectory),
            real.hasPrefix(store + "/")
        else {
            throw RunnerError(
                .notFound, input: input, problem: "is not unpacked in the registry content store (\(tree))",
                fix: "pull the image again (the job's prepare step pulls it)")
        }
        let config = try OCIImageConfig.decode(try FilePaths.read(tree + "/config.json"), input: tree + "/config.json")
        if try ImageOwnership.marker(version: tree) != nil {
            try ImageOwnership.ensure(
                version: tree, userNamespace: userNamespace, logger: Logger(label: "runner.images"),
                busy: { busy(real) })
        } else if userNamespace != .standard {
            throw RunnerError(
                .unsupported, input: input,
                problem: "registry images are unpacked for the standard user-namespace range, "
                    + "and RUNNER_GUEST_USERNS asks for another",
                fix: "set RUNNER_GUEST_USERNS=on to run registry images")
        }
        return (real, config)
    }

    /// Names of the images in the local store that have an active version.
    public func availableImages() -> [String] {
        ((try? ImageStore(layout: layout).list()) ?? []).map(\.name)
    }

    /// Checks a bind: an absolute clean target; a source inside an allowed root, opened from
    /// that root's trusted descriptor without following any symbolic link (``TrustedPath``).
    /// The result carries the descriptor of exactly what the source reached (the guest gets
    /// that object, staged by ``BindStaging``) and the caller's path for records and messages.
    /// A source in the externals directory is always bound read-only.
    func check(_ bind: GuestBind) throws(RunnerError) -> CheckedBind {
        let target = bind.target
        let parts = target.split(separator: "/", omittingEmptySubsequences: false)
        guard target.hasPrefix("/"), target != "/", !parts.contains(".."), !parts.contains("."),
            !target.contains("\0")
        else {
            throw RunnerError(
                .invalidInput, input: target, problem: "is not an acceptable mount target in the guest",
                fix: "use an absolute path without . or .. components")
        }
        guard let source = bind.source else {
            // An anonymous volume: nspawn makes it, owned by guest root; no mapping to choose.
            return CheckedBind(bind: GuestBind(source: nil, target: target, readOnly: bind.readOnly), descriptor: nil)
        }
        guard source.hasPrefix("/") else {
            throw RunnerError(
                .invalidInput, input: source, problem: "mount source is not an absolute path",
                fix: "name a path inside \(allowedMountRoots.joined(separator: " or "))")
        }
        let sourceParts = try TrustedPath.components(String(source.dropFirst()), input: source)
        let normalized = "/" + sourceParts.joined(separator: "/")
        let work = Self.normalized(workDirectory)
        var matched: (root: String, anchor: PathDescriptor, relative: String)?
        var missing: RunnerError?
        // The root the source names as configured; only that root's anchor is opened (and its
        // refusal, if any, is the answer).
        for root in allowedMountRoots {
            guard let relative = Self.relative(normalized, to: Self.normalized(root)) else { continue }
            do {
                matched = (root, try TrustedPath.openAnchor(Self.normalized(root), layout: layout), relative)
                break
            } catch  where error.code == .notFound {
                missing = error
            }
        }
        // Else a source given in resolved form: the roots as the kernel names them.
        if matched == nil {
            for root in allowedMountRoots {
                guard let anchor = try? TrustedPath.openAnchor(Self.normalized(root), layout: layout),
                    let real = anchor.currentPath, let relative = Self.relative(normalized, to: real)
                else { continue }
                matched = (root, anchor, relative)
                break
            }
        }
        guard let matched else {
            if let missing {
                throw RunnerError(
                    .notFound, input: source, problem: "mount source does not exist (\(missing.problem))",
                    fix: "create it first")
            }
            throw RunnerError(
                .permission, input: source,
                problem: "mount source is outside the allowed roots (\(allowedMountRoots.joined(separator: ", ")))",
                fix:
                    "bind only from the runner's work or externals directory, or add the path to RUNNER_GUEST_MOUNT_ALLOW "
                    + "in \(layout.configFile)")
        }
        let descriptor = try TrustedPath.resolve(matched.relative, beneath: matched.anchor)
        // The caller never chooses the mapping: with a user namespace every bind from the host
        // is idmapped, so what guest root writes belongs to the source's owner, never to root.
        var checked = GuestBind(
            source: source, target: target, readOnly: bind.readOnly,
            ownerMapping: userNamespace == nil ? .none : .rootIDMap)
        if !checked.readOnly, try isInExternals(descriptor, relative: matched.relative, anchor: matched.anchor) {
            checked.readOnly = true
        }
        let workRelative = Self.normalized(matched.root) == work ? matched.relative : nil
        return CheckedBind(bind: checked, descriptor: descriptor, workRelative: workRelative)
    }

    /// Whether the checked source `descriptor` (at `relative` under `anchor`) is the externals
    /// directory or inside it, whichever allowed root reached it.
    private func isInExternals(
        _ descriptor: PathDescriptor, relative: String, anchor: PathDescriptor
    ) throws(RunnerError) -> Bool {
        guard let externals = try? TrustedPath.openAnchor(layout.runnerExternalsDirectory, layout: layout) else {
            return false
        }
        let directory: PathDescriptor
        if descriptor.isDirectory {
            directory = descriptor
        } else {
            let parent = relative.split(separator: "/").dropLast().joined(separator: "/")
            directory = try TrustedPath.resolve(parent, beneath: anchor, directory: true)
        }
        return TrustedPath.isBeneath(directory, externals)
    }

    /// `path` without empty and `.` components (lexically; `..` is kept for callers to refuse).
    package static func normalized(_ path: String) -> String {
        "/" + path.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }

    /// `path` relative to `root` (both normalized): "" for the root itself, nil outside it.
    package static func relative(_ path: String, to root: String) -> String? {
        if path == root { return "" }
        if root == "/" { return String(path.dropFirst()) }
        return path.hasPrefix(root + "/") ? String(path.dropFirst(root.count + 1)) : nil
    }

    /// The capabilities a start request adds (`CAP_X`), each one the admin allowed
    /// (``allowedCapabilities``); anything else is refused.
    func checkCapabilities(_ requested: [String], image: String) throws(RunnerError) -> [String] {
        var added: [String] = []
        for text in requested {
            let name = try LinuxCapability.checkAdded(
                text, allowed: allowedCapabilities, input: "--cap-add \(text) (\(image))",
                configFile: layout.configFile)
            if !added.contains(name) { added.append(name) }
        }
        return added
    }

    /// `realpath(3)`, or nil when the path does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
