import CRunnerSystem
import Foundation
import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

extension GuestSuites {
    @Suite(
        .serialized,
        .enabled(
            if: HookHarness.isAvailable,
            "needs root, systemd-nspawn, mmdebstrap and the built runner-agent and runner-hook")
    )
    struct PathRedTeamGuestTests {
        func start(_ h: HookHarness, bind: String) async -> (GuestInfo?, HookHarness.Result) {
            let started = await h.runAgent(
                ["start", "--image", "job", "--bind", bind, "--owner-pid", "\(h.owner)"], asHelper: true)
            guard started.status == .exited(0) else { return (nil, started) }
            return (try? JSONDecoder().decode(GuestInfo.self, from: Data(started.stdout)), started)
        }

        /// Route 1: `start --bind <work>/a/b:/__x`; as the runner user `mv a a.orig; ln -s
        /// <canary> a`; a step runs; the root-owned canary stays root's and unchanged, and what
        /// the step made (in the directory the guest really has) is handed over.
        @Test func routeOneOwnershipWalkFollowsNoSwappedLink() async throws {
            try await HookHarness.with { h in
                let canary = try PathRedTeamTests.makeCanary(in: h.dir)
                try FilePaths.createDirectory(h.work + "/a/b")
                chown(h.work + "/a", PathRedTeamTests.owner, PathRedTeamTests.owner)
                chown(h.work + "/a/b", PathRedTeamTests.owner, PathRedTeamTests.owner)
                let (info, result) = await start(h, bind: h.work + "/a/b:/__x")
                let guest = try #require(info, "\(result.stderr)")
                #expect(rename(h.work + "/a", h.work + "/a.orig") == 0)
                #expect(symlink(canary, h.work + "/a") == 0)
                let step = await h.runAgent(
                    ["exec", guest.name, "--", "sh", "-c", "touch /__x/from-step; ls /__x"], asHelper: true)
                #expect(step.status == .exited(0), "\(step.stderr)")
                #expect(step.text == "from-step\n", "the guest has the checked directory, not the canary")
                // The walk as the helper runs it after a step without a user namespace.
                let manager = GuestManager(
                    policy: GuestPolicy(layout: h.layout, workOwner: (PathRedTeamTests.owner, PathRedTeamTests.owner)),
                    logger: Logger(label: "test"))
                let record = try #require(try manager.record(guest.name))
                _ = manager.fixOwnership(record)
                PathRedTeamTests.expectUntouched(canary)
                #expect(
                    PathRedTeamTests.owner(of: h.work + "/a.orig/b/from-step")!
                        == (PathRedTeamTests.owner, PathRedTeamTests.owner))
                _ = await h.runAgent(["stop", guest.name], asHelper: true)
                #expect(await h.leftoversAfterSettling() == [])
            }
        }

        /// Route 2: the runner user swaps `<work>/r/d` with a link to a canary in a tight
        /// `renameat2(RENAME_EXCHANGE)` loop while starting guests with `--bind <work>/r/d:/__x`.
        /// No guest ever sees the canary; each start binds the real directory or is refused
        /// naming the link.
        @Test func routeTwoCheckThenMountRaceNeverReachesTheCanary() async throws {
            try await HookHarness.with { h in
                let canary = try PathRedTeamTests.makeCanary(in: h.dir)
                try FilePaths.createDirectory(h.work + "/r/d")
                try AtomicFile.write("real", to: h.work + "/r/d/real-marker")
                #expect(symlink(canary, h.work + "/r/swap") == 0)
                let race = SwapRace(h.work + "/r/d", h.work + "/r/swap")
                race.start()
                defer { race.stop() }
                var bound = 0
                var refused = 0
                for _ in 0..<20 {
                    let (info, result) = await start(h, bind: h.work + "/r/d:/__x")
                    if let info {
                        bound += 1
                        let root = "/proc/\(info.leaderPID)/root/__x"
                        #expect(!FilePaths.exists(root + "/canary-marker"), "the guest sees the canary")
                        #expect(FilePaths.exists(root + "/real-marker"), "the guest has the real directory")
                        _ = await h.runAgent(["stop", info.name], asHelper: true)
                    } else {
                        refused += 1
                        #expect(result.stderr.contains("symbolic link"), "\(result.stderr)")
                    }
                }
                race.stop()
                #expect(race.swaps > 100, "the race ran")
                #expect(bound + refused == 20)
                PathRedTeamTests.expectUntouched(canary)
                #expect(await h.leftoversAfterSettling() == [])
            }
        }

        /// Route 6's writable bind: externals (and anything in it) is bound read-only whatever
        /// the caller asks; a step cannot create a file there.
        @Test func externalsIsAlwaysReadOnly() async throws {
            try await HookHarness.with { h in
                let (info, result) = await start(h, bind: h.externals + ":/__e")
                let guest = try #require(info, "\(result.stderr)")
                let manager = GuestManager(policy: GuestPolicy(layout: h.layout), logger: Logger(label: "test"))
                let record = try #require(try manager.record(guest.name))
                #expect(record.binds.first?.readOnly == true)
                let step = await h.runAgent(
                    ["exec", guest.name, "--", "sh", "-c", "touch /__e/rootsh || mkdir /__e/node20/x || exit 3"],
                    asHelper: true)
                #expect(step.status == .exited(3), "\(step.stderr)")
                #expect(!FilePaths.exists(h.externals + "/rootsh"))
                #expect(!FilePaths.exists(h.externals + "/node20/x"))
                _ = await h.runAgent(["stop", guest.name], asHelper: true)
                // A subdirectory asked for writable is read-only too.
                let (sub, subResult) = await start(h, bind: h.externals + "/node20:/__n")
                let subGuest = try #require(sub, "\(subResult.stderr)")
                let touch = await h.runAgent(["exec", subGuest.name, "--", "touch", "/__n/x"], asHelper: true)
                #expect(touch.status != .exited(0))
                #expect(!FilePaths.exists(h.externals + "/node20/x"))
                _ = await h.runAgent(["stop", subGuest.name], asHelper: true)
                #expect(await h.leftoversAfterSettling() == [])
            }
        }
    }
}
