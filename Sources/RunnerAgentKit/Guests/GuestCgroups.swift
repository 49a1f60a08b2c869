import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Per-guest cgroups for the direct backend (no systemd as PID 1, so nobody delegates a cgroup).
///
/// A booted guest in a user namespace needs a cgroup subtree it may write: its systemd creates
/// `init.scope` and friends as the guest's root, which is an unprivileged host UID. nspawn
/// delegates (chowns to the guest's range) the `payload/` subtree it makes *under its own
/// cgroup*; in the root cgroup that fails ("Failed to create /init.scope control group:
/// Permission denied"). So before nspawn starts, the starting process creates
/// `runner-guests/<guest>` in the `name=systemd` v1 hierarchy and in the cgroup2 hierarchy,
/// moves itself there, spawns nspawn (which inherits them) and moves itself back. Teardown and
/// gc remove the directories, children first (nspawn makes `payload/` and `supervisor/`).
///
/// ``root`` is the real `/sys/fs/cgroup` even in tests with a ``HostLayout`` root: a guest can
/// only boot in real cgroups. Everything here is keyed by a generated guest name, and removal
/// only ever `rmdir`s, which the kernel refuses for a cgroup that still has processes or
/// children.
public struct GuestCgroups: Sendable {
    /// Where the cgroup hierarchies are mounted.
    public var root: String
    /// The directory under each hierarchy that holds one cgroup per guest.
    public static let parentName = "runner-guests"

    public init(root: String = "/sys/fs/cgroup") {
        self.root = root
    }

    /// One hierarchy: its mount point and how `/proc/<pid>/cgroup` names it.
    public struct Hierarchy: Sendable, Hashable {
        /// The mount point (`/sys/fs/cgroup/systemd`, `/sys/fs/cgroup/unified` or `/sys/fs/cgroup`).
        public var mount: String
        /// The controller field of `/proc/<pid>/cgroup`: `name=systemd` for v1, empty for cgroup2.
        public var controllers: String
    }

    /// The hierarchies guests need: `name=systemd` (v1, on legacy and hybrid hosts) and cgroup2
    /// (`unified/` on hybrid hosts, the root on pure v2 hosts). Empty when neither is mounted.
    public func hierarchies() -> [Hierarchy] {
        var found: [Hierarchy] = []
        if FilePaths.exists(root + "/systemd/cgroup.procs") {
            found.append(Hierarchy(mount: root + "/systemd", controllers: "name=systemd"))
        }
        if FilePaths.exists(root + "/unified/cgroup.controllers") {
            found.append(Hierarchy(mount: root + "/unified", controllers: ""))
        } else if FilePaths.exists(root + "/cgroup.controllers") {
            found.append(Hierarchy(mount: root, controllers: ""))
        }
        return found
    }

    /// `<hierarchy>/runner-guests/<name>` for every hierarchy.
    public func directories(for name: String) -> [String] {
        hierarchies().map { $0.mount + "/" + Self.parentName + "/" + name }
    }

    /// Creates the guest's cgroups and runs `spawn` (which starts nspawn) with this process in
    /// them, then moves this process back to where it was. The spawned child stays in them.
    public func spawning<T>(
        guest name: String, _ spawn: () throws(RunnerError) -> T
    ) throws(RunnerError) -> T {
        let origin = try enter(guest: name)
        defer { Self.leave(origin) }
        return try spawn()
    }

    /// The same for an asynchronous `body` (the doctor's boot probe), which runs entirely in the
    /// guest's cgroups; they are removed afterwards.
    public func running<T>(
        guest name: String, _ body: () async throws(RunnerError) -> T
    ) async throws(RunnerError) -> T {
        let origin = try enter(guest: name)
        defer {
            Self.leave(origin)
            remove(guest: name)
        }
        return try await body()
    }

    /// Creates `runner-guests/<name>` in every hierarchy and moves this process into it; returns
    /// where it was (for ``leave(_:)``).
    func enter(guest name: String) throws(RunnerError) -> [(mount: String, path: String)] {
        try GuestPolicy.checkGuestName(name)
        let hierarchies = hierarchies()
        guard !hierarchies.isEmpty else {
            throw RunnerError(
                .unsupported, input: root, problem: "no name=systemd or cgroup2 hierarchy is mounted",
                fix: "mount cgroup2 at /sys/fs/cgroup (or set RUNNER_GUEST_USERNS=off)")
        }
        let origin = Self.currentCgroups(of: getpid())
        var moved: [(mount: String, path: String)] = []
        for hierarchy in hierarchies {
            guard let back = origin[hierarchy.controllers] else {
                Self.leave(moved)
                throw RunnerError(
                    .internal, input: "/proc/self/cgroup",
                    problem: "names no cgroup of the hierarchy at \(hierarchy.mount)")
            }
            let parent = hierarchy.mount + "/" + Self.parentName
            let directory = parent + "/" + name
            for path in [parent, directory] where mkdir(path, 0o755) != 0 && errno != EEXIST {
                Self.leave(moved)
                throw RunnerError.posix("could not create the guest's cgroup", path, fix: "run as root")
            }
            guard Self.writeProcs(directory, pid: getpid()) else {
                Self.leave(moved)
                throw RunnerError.posix("could not enter the guest's cgroup", directory + "/cgroup.procs", fix: nil)
            }
            moved.append((hierarchy.mount, back))
        }
        return moved
    }

    /// Moves this process back to the cgroups ``enter(guest:)`` recorded.
    static func leave(_ origin: [(mount: String, path: String)]) {
        for (mount, path) in origin.reversed() {
            _ = writeProcs(mount + path, pid: getpid())
        }
    }

    /// Removes the guest's cgroups, deepest first. A cgroup that still has processes stays (the
    /// kernel refuses); returns whether everything is gone. Waits up to `wait` seconds for the
    /// guest's last processes to leave.
    @discardableResult
    public func remove(guest name: String, wait: Double = 2) -> Bool {
        guard (try? GuestPolicy.checkGuestName(name)) != nil else { return false }
        let end = Posix.now() + wait
        while true {
            var gone = true
            for directory in directories(for: name) where !Self.removeTree(directory) { gone = false }
            if gone || Posix.now() >= end { return gone }
            Posix.sleep(0.02)
        }
    }

    /// Guest cgroups under `runner-guests/` in any hierarchy.
    public func guestNames() -> Set<String> {
        var names = Set<String>()
        for hierarchy in hierarchies() {
            for entry in FilePaths.entries(of: hierarchy.mount + "/" + Self.parentName)
            where (try? GuestPolicy.checkGuestName(entry)) != nil {
                names.insert(entry)
            }
        }
        return names
    }

    /// Whether any cgroup of the guest (or below it) holds a process.
    public func isPopulated(guest name: String) -> Bool {
        directories(for: name).contains { Self.hasProcesses($0) }
    }

    /// `rmdir` of `directory`'s sub-cgroups (depth first), then of `directory`. Only directories
    /// are touched (a cgroup file system has no symlinks); absent is success.
    static func removeTree(_ directory: String) -> Bool {
        var st = stat()
        guard lstat(directory, &st) == 0 else { return errno == ENOENT }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return false }
        for entry in FilePaths.entries(of: directory) {
            let child = directory + "/" + entry
            var cst = stat()
            if lstat(child, &cst) == 0, (cst.st_mode & S_IFMT) == S_IFDIR { _ = removeTree(child) }
        }
        return rmdir(directory) == 0 || errno == ENOENT
    }

    static func hasProcesses(_ directory: String) -> Bool {
        if let bytes = try? FilePaths.read(directory + "/cgroup.procs"),
            bytes.contains(where: { $0 != UInt8(ascii: "\n") })
        {
            return true
        }
        for entry in FilePaths.entries(of: directory) {
            let child = directory + "/" + entry
            var st = stat()
            if lstat(child, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, hasProcesses(child) { return true }
        }
        return false
    }

    /// `/proc/<pid>/cgroup` as controllers field → path (`"name=systemd": "/"`, `"": "/"`).
    static func currentCgroups(of pid: Int32) -> [String: String] {
        guard let bytes = try? FilePaths.read("/proc/\(pid)/cgroup") else { return [:] }
        var map: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            map[String(fields[1])] = String(fields[2])
        }
        return map
    }

    /// Writes `pid` to `<directory>/cgroup.procs` (moves the whole process).
    static func writeProcs(_ directory: String, pid: Int32) -> Bool {
        let fd = open(directory + "/cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let text = Array("\(pid)\n".utf8)
        return text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == text.count
    }
}
