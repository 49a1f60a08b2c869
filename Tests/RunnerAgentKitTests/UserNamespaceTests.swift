import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// User-namespaced guests: the nspawn argv, the policy's bind mapping, the settings, the image
/// owner shift and the per-guest cgroups (without booting a guest).
/// Serialized: the cgroup tests move this whole process into a guest cgroup and back.
@Suite(.serialized) struct UserNamespaceTests {
    static let range = GuestUserNamespace.standard

    @Test func bootArgvHasThePrivateUsersRangeAndIdmappedBinds() {
        var options = SystemdNspawn.BootOptions(directory: "/img/rootfs", machine: "rg-0123456789ab")
        options.userNamespace = Self.range
        options.binds = [
            GuestBind(source: "/w", target: "/__w", ownerMapping: .rootIDMap),
            GuestBind(source: "/e", target: "/__e", readOnly: true, ownerMapping: .rootIDMap),
            GuestBind(source: "/run/runner/guests/rg-0123456789ab.hosts", target: "/etc/hosts", readOnly: true),
            GuestBind(source: nil, target: "/anon", ownerMapping: .rootIDMap),
        ]
        #expect(
            SystemdNspawn.boot(options).argv == [
                "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--directory=/img/rootfs",
                "--machine=rg-0123456789ab", "--boot", "--volatile=overlay", "--notify-ready=yes",
                "--console=passive", "--private-users=2147352576:65536", "--private-users-ownership=off",
                "--bind=/w:/__w:rootidmap", "--bind-ro=/e:/__e:rootidmap",
                "--bind=:/anon", "--bind-ro=/run/runner/guests/rg-0123456789ab.hosts:/etc/hosts",
            ])
        #expect(
            DoctorNspawn().probe(rootfs: "/r", userNamespace: Self.range).argv == [
                "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--volatile=overlay", "--directory=/r",
                "--boot", "--private-users=2147352576:65536", "--private-users-ownership=off", "--",
                "--unit=poweroff.target",
            ])
    }

    @Test func thePolicyNotTheCallerChoosesTheMapping() throws {
        try withTemporaryDirectoryHelper { dir in
            var policy = GuestPolicy(layout: dir.layout)
            try FilePaths.createDirectory(dir.layout.workDirectory + "/repo")
            let asked = GuestBind(source: dir.layout.workDirectory + "/repo", target: "/__w/repo")
            #expect(try policy.check(asked).bind.ownerMapping == .rootIDMap)
            #expect(try policy.check(asked.readOnlyCopy).bind.ownerMapping == .rootIDMap)
            policy.userNamespace = nil
            var sneaky = asked
            sneaky.ownerMapping = .rootIDMap
            #expect(try policy.check(sneaky).bind.ownerMapping == GuestBind.OwnerMapping.none)
            // Records of older helpers have no mapping: none.
            let old = try JSONDecoder().decode(GuestBind.self, from: Data(#"{"source":"/w","target":"/__w"}"#.utf8))
            #expect(old.ownerMapping == GuestBind.OwnerMapping.none && !old.readOnly)
        }
    }

    @Test func settingsCarryTheSwitch() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            #expect(try HookSettings.load(layout: layout).guestUserNamespace)
            #expect(HookSettings().guestPolicy(layout: layout, backend: .direct).userNamespace == Self.range)
            try AtomicFile.write("RUNNER_GUEST_USERNS=off\n", to: layout.configFile)
            let off = try HookSettings.load(layout: layout)
            #expect(!off.guestUserNamespace)
            #expect(off.guestPolicy(layout: layout, backend: .direct).userNamespace == nil)
            // What `ci-nspawn-run settings` prints round-trips, and older output means on.
            let decoded = try JSONDecoder().decode(HookSettings.self, from: try JSONEncoder().encode(off))
            #expect(!decoded.guestUserNamespace)
            #expect(try JSONDecoder().decode(HookSettings.self, from: Data("{}".utf8)).guestUserNamespace)
            try AtomicFile.write("RUNNER_GUEST_USERNS=yes\n", to: layout.configFile)
            let error = try #require(throws: RunnerError.self) { try HookSettings.load(layout: layout) }
            #expect(error.problem.contains("RUNNER_GUEST_USERNS") && error.problem.contains("on nor off"))
        }
    }

    @Test func rangeParsesAndKernelSwitchIsRead() throws {
        #expect(GuestUserNamespace("2147352576:65536") == Self.range)
        #expect(GuestUserNamespace(Self.range.description) == Self.range)
        for bad in ["", "1", "a:b", "4294967295:2", "5:0"] { #expect(GuestUserNamespace(bad) == nil) }
        try withTemporaryDirectoryHelper { dir in
            try FilePaths.createDirectory(dir.appending("proc/sys/user"))
            #expect(!GuestUserNamespace.kernelAllows(procRoot: dir.appending("proc")))
            try AtomicFile.write("0\n", to: dir.appending("proc/sys/user/max_user_namespaces"))
            #expect(!GuestUserNamespace.kernelAllows(procRoot: dir.appending("proc")))
            try AtomicFile.write("15000\n", to: dir.appending("proc/sys/user/max_user_namespaces"))
            #expect(GuestUserNamespace.kernelAllows(procRoot: dir.appending("proc")))
        }
    }

    @Test func doctorSaysWhatGuestsGet() throws {
        try withTemporaryDirectoryHelper { dir in
            try FilePaths.createDirectory(dir.appending("proc/sys/user"))
            try AtomicFile.write("100\n", to: dir.appending("proc/sys/user/max_user_namespaces"))
            var doctor = Doctor(layout: dir.layout, commandRunner: RecordingCommandRunner(), bootCheck: false)
            doctor.procRoot = dir.appending("proc")
            doctor.systemdIsPID1 = true
            #expect(doctor.userNamespace(true).status == .ok)
            #expect(doctor.userNamespace(true).detail.contains("delegated systemd unit"))
            doctor.systemdIsPID1 = false
            doctor.cgroups = GuestCgroups(root: dir.appending("cgroup"))
            #expect(doctor.userNamespace(true).status == .problem)
            try FilePaths.createDirectory(dir.appending("cgroup"))
            try AtomicFile.write("", to: dir.appending("cgroup/cgroup.controllers"))
            #expect(doctor.userNamespace(true).detail.contains("cgroup of their own"))
            let off = doctor.userNamespace(false)
            #expect(off.status == .warning && off.rendered.contains("fix: set RUNNER_GUEST_USERNS=on"))
            try AtomicFile.write("0\n", to: dir.appending("proc/sys/user/max_user_namespaces"))
            let refused = doctor.userNamespace(true)
            #expect(refused.status == .problem && refused.detail.contains("refuses user namespaces"))
            #expect(doctor.userNamespace(nil).status == .skipped)
        }
    }

    @Test func cgroupHierarchiesOfHybridAndPureV2Hosts() throws {
        try withTemporaryDirectoryHelper { dir in
            let hybrid = dir.appending("hybrid")
            try FilePaths.createDirectory(hybrid + "/systemd")
            try FilePaths.createDirectory(hybrid + "/unified")
            try AtomicFile.write("", to: hybrid + "/systemd/cgroup.procs")
            try AtomicFile.write("", to: hybrid + "/unified/cgroup.controllers")
            #expect(
                GuestCgroups(root: hybrid).hierarchies().map(\.mount) == [hybrid + "/systemd", hybrid + "/unified"])
            #expect(
                GuestCgroups(root: hybrid).directories(for: "rg-0123456789ab") == [
                    hybrid + "/systemd/runner-guests/rg-0123456789ab",
                    hybrid + "/unified/runner-guests/rg-0123456789ab",
                ])
            let v2 = dir.appending("v2")
            try FilePaths.createDirectory(v2)
            try AtomicFile.write("", to: v2 + "/cgroup.controllers")
            #expect(GuestCgroups(root: v2).hierarchies() == [GuestCgroups.Hierarchy(mount: v2, controllers: "")])
            #expect(throws: RunnerError.self) {
                try GuestCgroups(root: dir.appending("none")).entering(guest: "rg-0123456789ab", Command("true"))
            }
            #expect(throws: RunnerError.self) {
                try GuestCgroups(root: v2).entering(guest: "../../x", Command("true"))
            }
        }
    }

    /// The wrapper that starts a command in a guest's cgroups: the host's shell enters each one,
    /// then execs the command, environment kept.
    @Test func enteringAGuestsCgroupsArgv() {
        var nspawn = Command("systemd-nspawn", ["--boot"])
        nspawn.environment["NOTIFY_SOCKET"] = "/run/runner/guests/rg-0123456789ab.notify"
        let wrapped = GuestCgroups.enter(procs: ["/a/cgroup.procs", "/b/cgroup.procs"], nspawn)
        #expect(
            wrapped.argv == [
                "/bin/sh", "-c",
                "n=$1; shift; while [ \"$n\" -gt 0 ]; do echo $$ > \"$1\" || exit 125; shift; n=$((n - 1)); done; "
                    + "exec \"$@\"",
                "runner-cgroup", "2", "/a/cgroup.procs", "/b/cgroup.procs", "systemd-nspawn", "--boot",
            ])
        #expect(wrapped.environment == nspawn.environment)
    }

    /// The real cgroups: a child spawned in a guest's cgroups stays there, we come back, and
    /// removal waits for the child to be gone.
    @Test(.requiresRoot, .enabled(if: !GuestCgroups().hierarchies().isEmpty, "needs cgroups"))
    func aChildIsSpawnedInTheGuestsOwnCgroup() async throws {
        let cgroups = GuestCgroups()
        let name = GuestPolicy.newGuestName()
        let before = GuestCgroups.currentCgroups(of: getpid())
        let sleeper = try Spawner.spawn(
            try cgroups.entering(guest: name, Command("sleep", ["30"])),
            options: SpawnOptions(standardOutput: .devNull, standardError: .devNull))
        let child = sleeper.pid
        // The shell moves itself, then becomes sleep (same PID).
        for _ in 0..<200 where ProcessTable.comm(of: child) != "sleep" { try await Task.sleep(for: .milliseconds(5)) }
        defer {
            sleeper.signal(SIGKILL)
            _ = sleeper.waitBlocking()
            cgroups.removeNow(guest: name)
        }
        #expect(GuestCgroups.currentCgroups(of: getpid()) == before)
        let inside = GuestCgroups.currentCgroups(of: child)
        for hierarchy in cgroups.hierarchies() {
            #expect(inside[hierarchy.controllers] == "/runner-guests/" + name)
        }
        #expect(cgroups.isPopulated(guest: name))
        #expect(cgroups.guestNames().contains(name))
        #expect(!(await cgroups.remove(guest: name, wait: 0)))
        sleeper.signal(SIGKILL)
        _ = await sleeper.wait()
        #expect(await cgroups.remove(guest: name))
        #expect(!cgroups.guestNames().contains(name))
    }

    /// gc removes the cgroups of guests that are gone (no record, no nspawn, no process), and
    /// leaves those of a guest that still has a process.
    @Test(.requiresRoot, .enabled(if: !GuestCgroups().hierarchies().isEmpty, "needs cgroups"))
    func gcRemovesCgroupsOfGuestsThatAreGone() async throws {
        let dir = try TemporaryDirectory("gc")
        defer { dir.remove() }
        let cgroups = GuestCgroups()
        let gone = GuestPolicy.newGuestName()
        let busy = GuestPolicy.newGuestName()
        _ = try cgroups.create(guest: gone)
        let sleeper = try Spawner.spawn(
            try cgroups.entering(guest: busy, Command("sleep", ["30"])),
            options: SpawnOptions(standardOutput: .devNull, standardError: .devNull))
        for _ in 0..<200 where ProcessTable.comm(of: sleeper.pid) != "sleep" {
            try await Task.sleep(for: .milliseconds(5))
        }
        defer {
            sleeper.signal(SIGKILL)
            _ = sleeper.waitBlocking()
            cgroups.removeNow(guest: busy)
        }
        for directory in cgroups.directories(for: gone) { try FilePaths.createDirectory(directory + "/payload/x") }
        let manager = GuestManager(policy: GuestPolicy(layout: dir.layout), logger: Logger(label: "test"))
        _ = await manager.gc()
        #expect(!cgroups.guestNames().contains(gone))
        #expect(cgroups.guestNames().contains(busy))
    }

    /// A tree with every kind of entry, shifted into the range and back, by descriptor: setuid
    /// modes survive, links are not followed, a second run changes nothing, and an interrupted
    /// shift is finished by ``ImageOwnership/ensure``.
    @Test(.requiresRoot)
    func imageOwnersAreShiftedOnceAndBack() throws {
        try withTemporaryDirectoryHelper { dir in
            let version = dir.appending("version")
            let root = version + "/rootfs"
            try FilePaths.createDirectory(root + "/usr/bin")
            try FilePaths.createDirectory(root + "/home/user")
            try AtomicFile.write("#!/bin/sh\n", to: root + "/usr/bin/su", mode: 0o4755)
            chmod(root + "/usr/bin/su", 0o4755)
            try AtomicFile.write("x", to: root + "/usr/bin/wall", mode: 0o2755)
            chown(root + "/usr/bin/wall", 0, 5)
            chmod(root + "/usr/bin/wall", 0o2755)
            try AtomicFile.write("u", to: root + "/home/user/file")
            chown(root + "/home/user", 1000, 1000)
            chown(root + "/home/user/file", 1000, 1000)
            link(root + "/home/user/file", root + "/hardlink")
            mkfifo(root + "/fifo", 0o600)
            // A name that is not UTF-8.
            let odd = root + "/odd-"
            let oddPath = Array(odd.utf8CString.dropLast()) + [CChar(bitPattern: 0xff), 0]
            #expect(oddPath.withUnsafeBufferPointer { creat($0.baseAddress!, 0o644) } >= 0)
            // A link out of the tree, to a canary: never followed.
            let canary = dir.appending("canary")
            try AtomicFile.write("c", to: canary)
            symlink(canary, root + "/usr/bin/escape")

            var st = stat()
            let logger = Logger(label: "test")
            #expect(try ImageOwnership.ensure(version: version, userNamespace: Self.range, logger: logger))
            #expect(try ImageOwnership.marker(version: version) == Self.range)
            stat(root + "/usr/bin/su", &st)
            #expect(st.st_uid == Self.range.base && st.st_mode & 0o7777 == 0o4755)
            stat(root + "/usr/bin/wall", &st)
            #expect(st.st_gid == Self.range.base + 5 && st.st_mode & 0o7777 == 0o2755)
            stat(root + "/home/user/file", &st)
            #expect(st.st_uid == Self.range.base + 1000 && st.st_gid == Self.range.base + 1000)
            lstat(root + "/usr/bin/escape", &st)
            #expect(st.st_uid == Self.range.base)
            stat(canary, &st)
            #expect(st.st_uid == 0)
            lstat(root + "/fifo", &st)
            #expect(st.st_uid == Self.range.base)
            #expect(
                oddPath.withUnsafeBufferPointer { lstat($0.baseAddress!, &st) } == 0 && st.st_uid == Self.range.base)
            stat(root, &st)
            #expect(st.st_uid == Self.range.base)
            // Already there: nothing to do.
            #expect(!(try ImageOwnership.ensure(version: version, userNamespace: Self.range, logger: logger)))
            #expect(
                try ImageOwnership.shift(
                    root: root, from: GuestUserNamespace(base: 0, size: 65536), to: Self.range) == 0)

            // Interrupted: half the tree back at 0, marker still says the range; switching off
            // maps everything back, and on again finishes everything.
            chown(root + "/usr/bin/su", 0, 0)
            chmod(root + "/usr/bin/su", 0o4755)
            #expect(try ImageOwnership.ensure(version: version, userNamespace: nil, logger: logger))
            #expect(try ImageOwnership.marker(version: version) == nil)
            stat(root + "/home/user/file", &st)
            #expect(st.st_uid == 1000)
            stat(root + "/usr/bin/su", &st)
            #expect(st.st_uid == 0 && st.st_mode & 0o7777 == 0o4755)
            chown(root + "/usr/bin/su", Self.range.base, Self.range.base)  // half shifted, no marker
            chmod(root + "/usr/bin/su", 0o4755)
            #expect(try ImageOwnership.ensure(version: version, userNamespace: Self.range, logger: logger))
            stat(root + "/usr/bin/su", &st)
            #expect(st.st_uid == Self.range.base && st.st_mode & 0o7777 == 0o4755)
            stat(root + "/home/user/file", &st)
            #expect(st.st_uid == Self.range.base + 1000)

            // A version guests still boot from is not shifted under them.
            #expect(throws: RunnerError.self) {
                try ImageOwnership.ensure(version: version, userNamespace: nil, logger: logger, busy: { true })
            }
            #expect(try ImageOwnership.marker(version: version) == Self.range)
            #expect(throws: RunnerError.self) {
                try ImageOwnership.shift(
                    root: root, from: Self.range, to: GuestUserNamespace(base: 2_147_352_577, size: 65536))
            }
        }
    }
}

extension GuestBind {
    var readOnlyCopy: GuestBind {
        var copy = self
        copy.readOnly = true
        return copy
    }
}
