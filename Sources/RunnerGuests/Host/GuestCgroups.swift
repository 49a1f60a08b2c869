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

    /// `<hierarchy>/runner-guests/<name>` (or `<hierarchy>/runner-guests/job-<id>/<name>`, where
    /// the guest's job has limits of its own: ``jobDirectory(_:)``) for every hierarchy, and for
    /// every v1 controller hierarchy that holds limits (``limitHierarchies()``).
    public func directories(for name: String) -> [String] {
        (hierarchies().map(\.mount) + limitHierarchies()).map { mount in
            let parent = mount + "/" + Self.parentName
            if !FilePaths.exists(parent + "/" + name) {
                for job in FilePaths.entries(of: parent) where Self.isJobDirectory(job) {
                    if FilePaths.exists(parent + "/" + job + "/" + name) { return parent + "/" + job + "/" + name }
                }
            }
            return parent + "/" + name
        }
    }

    /// The parent cgroup of job `id`'s guests, under `runner-guests/` (`job-<id>`): it carries
    /// the job's limits (`RUNNER_JOB_*`), so a job's guests share them.
    public static func jobDirectory(_ id: String) -> String { "job-" + id }

    static func isJobDirectory(_ entry: String) -> Bool {
        entry.hasPrefix("job-") && GuestNetworkNames.isJobID(String(entry.dropFirst(4)))
    }

    /// A job's parent cgroup: its id (``GuestNetworkNames/jobID(ownerPID:startTime:)``) and the
    /// limits all of its guests share.
    public struct Job: Sendable, Hashable {
        public var id: String
        public var limits: GuestLimits

        public init(id: String, limits: GuestLimits) {
            self.id = id
            self.limits = limits
        }
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
    /// (see ``entering(guest:_:)``). With `job`, the guest's cgroups are made under the job's
    /// parent (`runner-guests/job-<id>/<name>`), which carries the job's limits: the job's guests
    /// together stay within them; `limits` (the guest's own, such as a job container's
    /// `--memory`) apply to the guest within them. On cgroup2 the limits are `memory.max`,
    /// `cpu.max` and `pids.max` (the controllers enabled in the parents' subtrees); on v1
    /// (hybrid hosts) `memory.limit_in_bytes`, `cpu.cfs_quota_us` and `pids.max` in those
    /// controllers' hierarchies, which the guest cannot leave. A limit no hierarchy can carry is
    /// an error, never silently dropped.
    public func entering(guest name: String, job: Job? = nil, limits: GuestLimits, _ command: Command)
        throws(RunnerError) -> Command
    {
        let parents = [Self.parentName] + (job.map { [Self.parentName + "/" + Self.jobDirectory($0.id)] } ?? [])
        let path = parents[parents.count - 1] + "/" + name
        var procs = try create(guest: name, parents: parents).map { $0 + "/cgroup.procs" }
        let jobLimits = job?.limits ?? GuestLimits()
        guard !limits.isEmpty || !jobLimits.isEmpty else { return Self.enter(procs: procs, command) }
        var files: [(String, String)] = []
        let unified = unifiedControllers()
        // Each controller where the host has it: its v1 hierarchy (legacy and hybrid hosts),
        // else the cgroup2 one. The job's value goes on its parent, the guest's on its own.
        for setting in Self.settings(job: jobLimits, guest: limits) {
            let mount = root + "/" + setting.controller
            if FilePaths.exists(mount + "/cgroup.procs") {
                for path in (parents + [path]).map({ mount + "/" + $0 })
                where mkdir(path, 0o755) != 0 && errno != EEXIST {
                    throw RunnerError.posix("could not create the guest's cgroup", path, fix: "run as root")
                }
                for (directory, value) in [(parents.last, setting.job), (path, setting.guest)] {
                    guard let directory, let value, job != nil || directory == path else { continue }
                    if setting.controller == "cpu" {
                        files.append((mount + "/" + directory + "/cpu.cfs_period_us", "100000"))
                    }
                    files.append((mount + "/" + directory + "/" + setting.v1, value.v1))
                }
                procs.append(mount + "/" + path + "/cgroup.procs")
            } else if let unified, unified.controllers.contains(setting.controller) {
                for parent in [""] + parents {
                    let directory = parent.isEmpty ? unified.mount : unified.mount + "/" + parent
                    try Self.write("+" + setting.controller, to: directory + "/cgroup.subtree_control")
                }
                for (directory, value) in [(parents.last, setting.job), (path, setting.guest)] {
                    guard let directory, let value, job != nil || directory == path else { continue }
                    files.append((unified.mount + "/" + directory + "/" + setting.v2, value.v2))
                }
            } else {
                throw Self.noController(setting.controller, root: root)
            }
        }
        // Parents first: a v1 CPU quota may not exceed its parent's.
        for (path, value) in files { try Self.write(value, to: path) }
        return Self.enter(procs: procs, command)
    }

    /// One controller's files and values: the job's (on its parent) and the guest's (nil: none).
    struct Setting: Equatable {
        var controller: String
        var v1: String
        var v2: String
        var job: (v1: String, v2: String)?
        var guest: (v1: String, v2: String)?

        static func == (a: Setting, b: Setting) -> Bool {
            a.controller == b.controller && a.v1 == b.v1 && a.v2 == b.v2 && a.job?.v1 == b.job?.v1
                && a.job?.v2 == b.job?.v2 && a.guest?.v1 == b.guest?.v1 && a.guest?.v2 == b.guest?.v2
        }
    }

    /// The cgroup files `job`'s and `guest`'s limits set, per controller (`memory`, `cpu`,
    /// `pids`), for the controllers either limits: v1 `memory.limit_in_bytes`,
    /// `cpu.cfs_quota_us` (per 100 ms period), `pids.max`; cgroup2 `memory.max`, `cpu.max`
    /// (`QUOTA 100000`), `pids.max`.
    static func settings(job: GuestLimits, guest: GuestLimits) -> [Setting] {
        func values(_ limits: GuestLimits, _ controller: String) -> (v1: String, v2: String)? {
            switch controller {
            case "memory": limits.memoryMax.map { ("\($0)", "\($0)") }
            case "cpu": limits.cpuQuotaMicroseconds.map { ("\($0)", "\($0) 100000") }
            default: limits.tasksMax.map { ("\($0)", "\($0)") }
            }
        }
        let files = [
            ("memory", "memory.limit_in_bytes", "memory.max"), ("cpu", "cpu.cfs_quota_us", "cpu.max"),
            ("pids", "pids.max", "pids.max"),
        ]
        return files.compactMap { controller, v1, v2 in
            let setting = Setting(
                controller: controller, v1: v1, v2: v2, job: values(job, controller), guest: values(guest, controller))
            return setting.job == nil && setting.guest == nil ? nil : setting
        }
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

    /// The guest's unit's memory events in any job slice (``JobSlices``, machined backend).
    func jobSliceEvents(guest name: String) -> [String] {
        ["", "/unified", "/memory"].flatMap { hierarchy in
            let slices = root + hierarchy + "/runner.slice/runner-job.slice"
            let file = hierarchy == "/memory" ? "/memory.oom_control" : "/memory.events"
            return FilePaths.entries(of: slices).filter { JobSlices.jobID(unit: $0) != nil }.map {
                slices + "/" + $0 + "/" + name + ".service" + file
            }
        }
    }

    /// How many processes the OOM killer killed in the guest so far (`oom_kill` of the guest's
    /// memory cgroup: its own `runner-guests/<name>`, or with machined its unit's, in its job's
    /// slice or `system.slice`), or nil
    /// when no memory cgroup of it is found.
    public func oomKills(guest name: String) -> UInt64? {
        let own = directories(for: name)
        let candidates =
            own.filter { !$0.hasPrefix(root + "/memory/") }.map { $0 + "/memory.events" }
            + own.filter { $0.hasPrefix(root + "/memory/") }.map { $0 + "/memory.oom_control" } + [
                root + "/" + Self.parentName + "/" + name + "/memory.events",
                root + "/unified/" + Self.parentName + "/" + name + "/memory.events",
                root + "/memory/" + Self.parentName + "/" + name + "/memory.oom_control",
                root + "/system.slice/" + name + ".service/memory.events",
                root + "/memory/system.slice/" + name + ".service/memory.oom_control",
            ] + jobSliceEvents(guest: name)
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

    /// Creates `runner-guests/<name>` (or the guest's directory under `parents`, outermost
    /// first) in every hierarchy; returns the directories.
    func create(guest name: String, parents: [String] = [parentName]) throws(RunnerError) -> [String] {
        try GuestName.check(name)
        let hierarchies = hierarchies()
        guard !hierarchies.isEmpty else {
            throw RunnerError(
                .unsupported, input: root, problem: "no name=systemd or cgroup2 hierarchy is mounted",
                fix: "mount cgroup2 at /sys/fs/cgroup (or set RUNNER_GUEST_USERNS=off)")
        }
        var directories: [String] = []
        for hierarchy in hierarchies {
            let paths = (parents + [(parents.last ?? Self.parentName) + "/" + name]).map { hierarchy.mount + "/" + $0 }
            for path in paths where mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw RunnerError.posix("could not create the guest's cgroup", path, fix: "run as root")
            }
            directories.append(paths[paths.count - 1])
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
        guard GuestName.isValid(name) else { return false }
        var gone = true
        for directory in directories(for: name) {
            if !Self.removeTree(directory) {
                gone = false
                continue
            }
            // A job's parent goes with its last guest (the kernel refuses while others remain).
            let parent = FilePaths.parent(of: directory)
            if Self.isJobDirectory(FilePaths.basename(parent)) { rmdir(parent) }
        }
        return gone
    }

    /// Removes job parents (``jobDirectory(_:)``) no guest is under any more (what a killed job
    /// left); a parent that still has a guest's cgroup stays.
    public func removeEmptyJobs() {
        for mount in hierarchies().map(\.mount) + limitHierarchies() {
            let parent = mount + "/" + Self.parentName
            for entry in FilePaths.entries(of: parent) where Self.isJobDirectory(entry) {
                rmdir(parent + "/" + entry)
            }
        }
    }

    /// The job parents under `runner-guests/` in any hierarchy: their ids.
    public func jobIDs() -> Set<String> {
        var ids = Set<String>()
        for mount in hierarchies().map(\.mount) + limitHierarchies() {
            for entry in FilePaths.entries(of: mount + "/" + Self.parentName) where Self.isJobDirectory(entry) {
                ids.insert(String(entry.dropFirst(4)))
            }
        }
        return ids
    }

    /// Guest cgroups under `runner-guests/` in any hierarchy.
    public func guestNames() -> Set<String> {
        var names = Set<String>()
        for mount in hierarchies().map(\.mount) + limitHierarchies() {
            let parent = mount + "/" + Self.parentName
            for entry in FilePaths.entries(of: parent) {
                if GuestName.isValid(entry) { names.insert(entry) }
                guard Self.isJobDirectory(entry) else { continue }
                for child in FilePaths.entries(of: parent + "/" + entry) where GuestName.isValid(child) {
                    names.insert(child)
                }
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
