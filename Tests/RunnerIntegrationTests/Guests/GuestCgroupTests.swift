import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The per-guest cgroups on the real hierarchy, as root.
/// Serialized: the tests move this whole process into a guest cgroup and back.
@Suite(.serialized) struct GuestCgroupTests {
    /// The real cgroups: a child spawned in a guest's cgroups stays there, we come back, and
    /// removal waits for the child to be gone.
    @Test(.requiresRoot, .enabled(if: !GuestCgroups().hierarchies().isEmpty, "needs cgroups"))
    func aChildIsSpawnedInTheGuestsOwnCgroup() async throws {
        let cgroups = GuestCgroups()
        let name = GuestName.generate()
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
        let gone = GuestName.generate()
        let busy = GuestName.generate()
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
}
