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

/// User-namespaced guests without root and without booting one: the nspawn argv, the policy's
/// bind mapping, the settings, the doctor's finding and the per-guest cgroups' layout. (As root:
/// `GuestCgroupTests` and `ImageOwnershipTests` in RunnerIntegrationTests.)
@Suite struct UserNamespaceTests {
    static let range = GuestUserNamespace.standard

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
}

extension GuestBind {
    var readOnlyCopy: GuestBind {
        var copy = self
        copy.readOnly = true
        return copy
    }
}
