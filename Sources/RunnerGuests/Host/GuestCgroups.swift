import RunnerCore
import RunnerSystem

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

    /// `<hierarchy>/runner-guests/<name>` for every hierarchy, and for every v1 controller
    /// hierarchy that holds limits (``limitHierarchies()``).
    public func directories(for name: String) -> [String] {
        (hierarchies().map(\.mount) + limitHierarchies()).map { $0 + "/" + Self.parentName + "/" + name }
    }

    /// The v1 hierarchies of the controllers that carry limits (`memory`, `pids`, `cpu`), on
    /// legacy and hybrid hosts; empty on a pure cgroup2 host.
    public func limitHierarchies() -> [String] {
        ["memory", "pids", "cpu"].map { root + "/" + $0 }.filter { FilePaths.exists($0 + "/cgroup.procs") }
    }

    /// The cgroup2 mount whose root offers the controllers (a pure v2 host), or nil.
    func unifiedControllers() -> (mount: String, controllers: Set<String>)? {
        for mount in [root, root + "/unified"] {
            guard let bytes = try? FilePaths.read(mount + "/cgroup.controllers") else { continue }
            let names = Set(
                String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace).map(String.init))
            if !names.isEmpty { return (mount, names) }
        }
        return nil
    }

    /// Creates the guest's cgroups with `limits` and returns `command` made to start in them
    /// (see ``entering(guest:_:)``). On cgroup2 the limits are `memory.max`, `cpu.max` and
    /// `pids.max` of `runner-guests/<name>` (the controllers enabled in the parents' subtrees);
    /// on v1 (hybrid hosts) `memory.limit_in_bytes`, `cpu.cfs_quota_us` and `pids.max` in those
    /// controllers' hierarchies, which the guest cannot leave. A limit no hierarchy can carry is
    /// an error, never silently dropped.
    public func entering(guest name: String, limits: GuestLimits, _ command: Command) throws(RunnerError) -> Command {
        var procs = try create(guest: name).map { $0 + "/cgroup.procs" }
        guard !limits.isEmpty else { return Self.enter(procs: procs, command) }
        var files: [(String, String)] = []
        let unified = unifiedControllers()
        // Each controller where the host has it: its v1 hierarchy (legacy and hybrid hosts),
        // else the cgroup2 one.
        let wanted: [(String, (v1: String, v2: String, value: String, v2Value: String)?)] = [
            ("memory", limits.memoryMax.map { ("memory.limit_in_bytes", "memory.max", "\($0)", "\($0)") }),
            ("cpu", limits.cpuQuotaMicroseconds.map { ("cpu.cfs_quota_us", "cpu.max", "\($0)", "\($0) 100000") }),
            ("pids", limits.tasksMax.map { ("pids.max", "pids.max", "\($0)", "\($0)") }),
        ]
        for (controller, setting) in wanted {
            guard let setting else { continue }
            let mount = root + "/" + controller
            if FilePaths.exists(mount + "/cgroup.procs") {
                let parent = mount + "/" + Self.parentName
                let directory = parent + "/" + name
                for path in [parent, directory] where mkdir(path, 0o755) != 0 && errno != EEXIST {
                    throw RunnerError.posix("could not create the guest's cgroup", path, fix: "run as root")
                }
                if controller == "cpu" { files.append((directory + "/cpu.cfs_period_us", "100000")) }
                files.append((directory + "/" + setting.v1, setting.value))
                procs.append(directory + "/cgroup.procs")
            } else if let unified, unified.controllers.contains(controller) {
                for parent in [unified.mount, unified.mount + "/" + Self.parentName] {
                    try Self.write("+" + controller, to: parent + "/cgroup.subtree_control")
                }
                files.append((unified.mount + "/" + Self.parentName + "/" + name + "/" + setting.v2, setting.v2Value))
            } else {
                throw Self.noController(controller, root: root)
            }
        }
        for (path, value) in files { try Self.write(value, to: path) }
        return Self.enter(procs: procs, command)
    }

    static func noController(_ controller: String, root: String) -> RunnerError {
        RunnerError(
            .unsupported, input: root, problem: "has no \(controller) controller for the job's limits",
            fix: "enable the \(controller) cgroup controller, or unset the RUNNER_JOB_* limit that needs it")
    }

    /// Writes `value` to a cgroup file.
    static func write(_ value: String, to path: String) throws(RunnerError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw RunnerError.posix("could not open the cgroup file", path, fix: "run as root") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else {
            throw RunnerError.posix("could not write \(value) to the cgroup file", path, fix: nil)
        }
    }

    /// How many processes the OOM killer killed in the guest so far (`oom_kill` of the guest's
    /// memory cgroup: its own `runner-guests/<name>`, or with machined its unit's), or nil
    /// when no memory cgroup of it is found.
    public func oomKills(guest name: String) -> UInt64? {
        let candidates = [
            root + "/" + Self.parentName + "/" + name + "/memory.events",
            root + "/unified/" + Self.parentName + "/" + name + "/memory.events",
            root + "/memory/" + Self.parentName + "/" + name + "/memory.oom_control",
            root + "/system.slice/" + name + ".service/memory.events",
            root + "/memory/system.slice/" + name + ".service/memory.oom_control",
        ]
        for path in candidates {
            guard let bytes = try? FilePaths.read(path) else { continue }
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count == 2, fields[0] == "oom_kill", let count = UInt64(fields[1]) { return count }
            }
        }
        return nil
    }

    /// Creates the guest's cgroups and returns `command` made to start in them: the host's
    /// `/bin/sh` writes its own PID to each `cgroup.procs`, then execs the command (same PID, so
    /// the caller's PID and start time are the command's). The calling process never moves, so
    /// nothing else it starts meanwhile (other threads, other tests) lands in the guest's cgroups.
    /// A cgroup that cannot be entered ends the shell with 125 before the command runs.
    public func entering(guest name: String, _ command: Command) throws(RunnerError) -> Command {
        let procs = try create(guest: name).map { $0 + "/cgroup.procs" }
        return Self.enter(procs: procs, command)
    }

    /// `/bin/sh -c 'SCRIPT' runner-cgroup N PROCS… COMMAND…`: writes the shell's PID to the N
    /// `cgroup.procs` files, then execs COMMAND (environment kept).
    static func enter(procs: [String], _ command: Command) -> Command {
        let script =
            "n=$1; shift; while [ \"$n\" -gt 0 ]; do echo $$ > \"$1\" || exit 125; shift; n=$((n - 1)); done; "
            + "exec \"$@\""
        return Shell().wrapping(script, operands: ["runner-cgroup", "\(procs.count)"] + procs, command)
    }

    /// Creates `runner-guests/<name>` in every hierarchy; returns the directories.
    func create(guest name: String) throws(RunnerError) -> [String] {
        try GuestName.check(name)
        let hierarchies = hierarchies()
        guard !hierarchies.isEmpty else {
            throw RunnerError(
                .unsupported, input: root, problem: "no name=systemd or cgroup2 hierarchy is mounted",
                fix: "mount cgroup2 at /sys/fs/cgroup (or set RUNNER_GUEST_USERNS=off)")
        }
        var directories: [String] = []
        for hierarchy in hierarchies {
            let parent = hierarchy.mount + "/" + Self.parentName
            let directory = parent + "/" + name
            for path in [parent, directory] where mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw RunnerError.posix("could not create the guest's cgroup", path, fix: "run as root")
            }
            directories.append(directory)
        }
        return directories
    }

    /// Removes the guest's cgroups, deepest first. A cgroup that still has processes stays (the
    /// kernel refuses); returns whether everything is gone. Waits up to `wait` seconds for the
    /// guest's last processes to leave.
    @discardableResult
    public func remove(guest name: String, wait: Double = 2) async -> Bool {
        let end = MonotonicClock.now() + wait
        while true {
            let gone = removeNow(guest: name)
            if gone || MonotonicClock.now() >= end { return gone }
            await MonotonicClock.pause(.milliseconds(20))
        }
    }

    /// Removes the guest's cgroups, deepest first, without waiting: those that still hold a
    /// process stay. Returns whether everything is gone.
    @discardableResult
    public func removeNow(guest name: String) -> Bool {
        guard (try? GuestName.check(name)) != nil else { return false }
        var gone = true
        for directory in directories(for: name) where !Self.removeTree(directory) { gone = false }
        return gone
    }

    /// Guest cgroups under `runner-guests/` in any hierarchy.
    public func guestNames() -> Set<String> {
        var names = Set<String>()
        for mount in hierarchies().map(\.mount) + limitHierarchies() {
            for entry in FilePaths.entries(of: mount + "/" + Self.parentName)
            where (try? GuestName.check(entry)) != nil {
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
}
