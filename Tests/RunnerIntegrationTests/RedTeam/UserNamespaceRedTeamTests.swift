import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests

#if canImport(Glibc)
    import Glibc
#endif

extension GuestSuites {
    /// Issue #10, routes 3, 6, 7 and 11: what guest root could do to the host while it was host
    /// root, tried against canaries this test owns, through the real helper (`ci-nspawn-run
    /// start` / `exec`, the code path the hook and the relay use). With user namespaces (the
    /// default) every attempt fails or lands as the runner user. The control test shows the
    /// probe of route 3 is real: with `RUNNER_GUEST_USERNS=off` the same open succeeds (nothing
    /// is written).
    @Suite(
        .serialized,
        .guestsAndSetpriv)
    struct UserNamespaceRedTeamTests {
        static let owner = HookHarness.ownerUID

        /// Boots a guest of `image` with the work tree at /__w, externals at /__e (`ro` or not)
        /// and a host alias (so /etc/hosts is a generated, bound file), runs `body`, then stops it.
        func withGuest(
            image: String = "job", externalsReadOnly: Bool, configure: (HookHarness) throws -> Void = { _ in },
            _ body: (HookHarness, String) async throws -> Void
        ) async throws {
            let h = try await HookHarness()
            do {
                try configure(h)
                let externals = h.externals + ":/__e" + (externalsReadOnly ? ":ro" : "")
                let started = await h.runAgent(
                    [
                        "start", "--image", image, "--bind", h.work + ":/__w", "--bind", externals, "--host-alias",
                        "svc", "--owner-pid", "\(h.owner)",
                    ], asHelper: true)
                try #require(started.status == .exited(0), "\(started.stderr)")
                let info = try JSONDecoder().decode(GuestInfo.self, from: Data(started.stdout))
                try await body(h, info.name)
                #expect(await h.runAgent(["stop", info.name], asHelper: true).status == .exited(0))
                #expect(await h.leftoversAfterSettling() == [])
                // The guest's own cgroups (no systemd as PID 1 here) went with it.
                #expect(GuestCgroups().directories(for: info.name).filter { FilePaths.exists($0) } == [])
            } catch {
                await h.finish()
                throw error
            }
            await h.finish()
        }

        /// Runs `script` as a step (guest root) and returns its result.
        func step(_ h: HookHarness, _ guest: String, _ script: String) async -> HookHarness.Result {
            await h.runAgent(["exec", guest, "--", "/bin/bash", "-c", script], asHelper: true)
        }

        /// A step that first escapes the step unit's sandbox (docker's capabilities, the
        /// system-call filter) the way guest root can: it asks its own guest's systemd for a unit
        /// without them (`systemd-run` in the guest, the guest's own binary in the guest) and runs
        /// `script` there. What stops the attack is then the user namespace alone.
        func unsandboxedStep(_ h: HookHarness, _ guest: String, _ script: String) async -> HookHarness.Result {
            let encoded = Data(script.utf8).base64EncodedString()
            return await step(
                h, guest,
                "echo \(encoded) | base64 -d > /tmp/attack.sh && "
                    + "systemd-run --quiet --wait --pipe --collect /bin/bash /tmp/attack.sh")
        }

        /// `open(O_WRONLY)` of core_pattern in a fresh proc mount: never writes a byte.
        static let coreProbe = """
            mkdir -p /run/p && mount -t proc proc /run/p && echo mounted
            python3 -c "
            import os
            try:
                os.close(os.open('/run/p/sys/kernel/core_pattern', os.O_WRONLY))
                print('WRITABLE')
            except OSError as e:
                print('REFUSED', e.errno)
            "
            """

        @Test func guestRootIsTheShiftedRange() async throws {
            try await withGuest(externalsReadOnly: true) { h, guest in
                let ids = await step(h, guest, "id -u; cat /proc/self/uid_map /proc/self/gid_map")
                #expect(ids.status == .exited(0), "\(ids.stderr)")
                let lines = ids.text.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
                #expect(lines == ["0", "0 2147352576 65536", "0 2147352576 65536"], "\(ids.text)")
                // The guest's systemd is an unprivileged host process.
                let leader = try #require(
                    (try? FilePaths.read(h.layout.guestRecord(guest))).flatMap {
                        try? JSONDecoder().decode(GuestRecord.self, from: Data($0))
                    }?.leaderPID)
                let status = String(decoding: try FilePaths.read("/proc/\(leader)/status"), as: UTF8.self)
                #expect(status.contains("Uid:\t2147352576\t2147352576\t2147352576\t2147352576"), "\(status)")
            }
        }

        /// Route 3: a step mounts a fresh proc and tries to open `kernel.core_pattern` for writing.
        @Test func route3CorePatternIsNotWritable() async throws {
            let before = try FilePaths.read("/proc/sys/kernel/core_pattern")
            try await withGuest(externalsReadOnly: true) { h, guest in
                let probe = await unsandboxedStep(h, guest, Self.coreProbe)
                #expect(
                    probe.text.contains("mounted"), "the attack gets as far as its proc: \(probe.text)\(probe.stderr)")
                #expect(probe.text.contains("REFUSED"), "\(probe.text)\(probe.stderr)")
                #expect(!probe.text.contains("WRITABLE"))
            }
            #expect(try FilePaths.read("/proc/sys/kernel/core_pattern") == before)
        }

        /// The control: with `RUNNER_GUEST_USERNS=off` guest root is host root: the same open
        /// succeeds (the probe writes nothing). This is the route as it was.
        @Test func withoutUserNamespacesRoutes3And7And11Succeed() async throws {
            let before = try FilePaths.read("/proc/sys/kernel/core_pattern")
            try await withGuest(
                image: "plain", externalsReadOnly: true,
                configure: { h in
                    let text = String(decoding: try FilePaths.read(h.layout.configFile), as: UTF8.self)
                    try AtomicFile.write(text + "RUNNER_GUEST_USERNS=off\n", to: h.layout.configFile)
                    try HookHarness.installImage(
                        CachedTree.guest.cacheDirectory, name: "plain", layout: h.layout, userNamespace: nil)
                }
            ) { h, guest in
                let probe = await unsandboxedStep(h, guest, Self.coreProbe)
                #expect(probe.text.contains("WRITABLE"), "\(probe.text)\(probe.stderr)")
                let ids = await step(h, guest, "cat /proc/self/uid_map")
                #expect(ids.text.split(separator: " ").joined(separator: " ").hasPrefix("0 0 4294967295"))
                // Route 7 without a user namespace: the shell is root's in the bind until the
                // after-step walk (no depth limit any more) hands it to the work owner and strips
                // its setuid bit; only user namespaces make it the owner's from the start.
                let deep = await step(
                    h, guest,
                    "d=/__w/deep; for i in $(seq 260); do d=$d/d; done; mkdir -p $d && cp /bin/bash $d/rootsh "
                        + "&& chmod 4755 $d/rootsh")
                #expect(deep.status == .exited(0), "\(deep.stderr)")
                var st = stat()
                let shell = h.work + "/deep" + String(repeating: "/d", count: 260) + "/rootsh"
                #expect(lstat(shell, &st) == 0 && st.st_uid == Self.owner && st.st_mode & S_ISUID == 0)
                unlink(shell)
                // Route 11 as it was: the read-only externals bind remounted writable.
                let remount = await unsandboxedStep(h, guest, "mount -o remount,rw,bind /__e && touch /__e/remounted")
                #expect(remount.status == .exited(0), "\(remount.stderr)")
                #expect(FilePaths.exists(h.externals + "/remounted"))
            }
            #expect(try FilePaths.read("/proc/sys/kernel/core_pattern") == before)
        }

        /// Route 6: a step plants a setuid shell and a memory device in an externals bind it asked
        /// for writable: externals is always bound read-only, and devices are refused anyway.
        @Test func route6SetuidAndDevicesInExternalsGiveNothing() async throws {
            try await withGuest(externalsReadOnly: false) { h, guest in
                let attack = await step(
                    h, guest,
                    "cp /bin/bash /__e/rootsh && chmod 4755 /__e/rootsh && echo planted; "
                        + "mknod /__e/mem c 1 1 && echo mknod-ok; true")
                #expect(!attack.text.contains("planted"), "externals is read-only: \(attack.text)")
                #expect(!attack.text.contains("mknod-ok"), "\(attack.text)\(attack.stderr)")
                var st = stat()
                #expect(lstat(h.externals + "/mem", &st) != 0 || (st.st_mode & S_IFMT) != S_IFCHR)
                #expect(lstat(h.externals + "/rootsh", &st) != 0, "nothing was planted in the host's externals")
            }
        }

        /// Route 7: a setuid-root shell 260 levels deep in the workspace (below where the old
        /// ownership walk stopped) is, on the host, the work owner's and no one's root.
        @Test func route7DeepSetuidShellBelongsToTheWorkOwner() async throws {
            try await withGuest(externalsReadOnly: true) { h, guest in
                let attack = await step(
                    h, guest,
                    "d=/__w/deep; for i in $(seq 260); do d=$d/d; done; mkdir -p $d && cp /bin/bash $d/rootsh "
                        + "&& chown 0:0 $d/rootsh && chmod 4755 $d/rootsh && stat -c '%u %a' $d/rootsh")
                #expect(attack.status == .exited(0), "\(attack.text)\(attack.stderr)")
                #expect(attack.text == "0 4755\n", "guest root sees its own file")
                let deep = h.work + "/deep" + String(repeating: "/d", count: 260) + "/rootsh"
                // Deeper than PATH_MAX allows in one string? 260 × 2 characters is not: plain lstat.
                var st = stat()
                #expect(lstat(deep, &st) == 0)
                #expect(st.st_uid == Self.owner && st.st_gid == Self.owner, "owner \(st.st_uid):\(st.st_gid)")
                #expect(!(st.st_uid == 0 && st.st_mode & S_ISUID != 0))
            }
        }

        /// Route 11: read-only binds (externals, the generated /etc/hosts) stay read-only: guest
        /// root cannot remount them writable.
        @Test func route11ReadOnlyBindsCannotBeRemountedWritable() async throws {
            try await withGuest(externalsReadOnly: true) { h, guest in
                let canary = h.externals + "/canary"
                try AtomicFile.write("original\n", to: canary)
                chown(canary, Self.owner, Self.owner)
                let hosts = h.layout.guestHostsFile(guest)
                let hostsBefore = try FilePaths.read(hosts)
                let attack = await unsandboxedStep(
                    h, guest,
                    "mount -o remount,rw,bind /__e && echo remounted-e; echo pwned > /__e/canary && echo wrote-e; "
                        + "mount -o remount,rw,bind /etc/hosts && echo remounted-hosts; "
                        + "echo pwned >> /etc/hosts && echo wrote-hosts; true")
                #expect(!attack.text.contains("remounted"), "\(attack.text)\(attack.stderr)")
                #expect(attack.stderr.contains("mount"), "the remount was tried: \(attack.stderr)")
                #expect(!attack.text.contains("wrote"), "\(attack.text)\(attack.stderr)")
                #expect(String(decoding: try FilePaths.read(canary), as: UTF8.self) == "original\n")
                #expect(try FilePaths.read(hosts) == hostsBefore)
                // The guest still reads its generated /etc/hosts (owned by its root).
                let read = await step(h, guest, "grep -c svc /etc/hosts")
                #expect(read.text == "1\n", "\(read.text)\(read.stderr)")
            }
        }
    }
}
