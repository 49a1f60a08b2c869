import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests

/// `options:` that would weaken a guest's sandbox are refused unless the admin allowed them.
@Suite struct SandboxOptionTests {
    @Test(arguments: [
        "--privileged", "--cap-add SYS_ADMIN", "--cap-add=ALL", "--cap-add NET_RAW,SYS_MODULE",
        "--security-opt seccomp=unconfined", "--device /dev/kvm", "--pid=host", "--ipc host", "--userns=host",
    ])
    func weakeningOptionsAreRefused(_ text: String) {
        #expect(throws: RunnerError.self) {
            try CreateOptions.parse(text, owner: "job container x", allowedCapabilities: ["CAP_NET_RAW"])
        }
    }

    @Test func privilegedNamesTheWayOut() {
        do {
            _ = try CreateOptions.parse("--privileged", owner: "job container x")
            Issue.record("--privileged was accepted")
        } catch {
            #expect(error.code == .permission)
            #expect(error.fix?.contains("RUNNER_GUEST_CAP_ADD") == true)
        }
    }

    @Test func allowedCapabilitiesAreKept() throws {
        let options = try CreateOptions.parse(
            "--cap-add sys_ptrace --cap-add=CAP_SYS_PTRACE,NET_RAW --network host", owner: "s",
            allowedCapabilities: ["CAP_SYS_PTRACE", "CAP_NET_RAW"])
        #expect(options.capabilities == ["CAP_SYS_PTRACE", "CAP_NET_RAW"])
        #expect(options.ignored == ["--network host"])
    }

    @Test func theHelperChecksTheRequestAgainstItsOwnConfig() throws {
        var policy = GuestPolicy(layout: HostLayout(root: "/nonexistent"))
        #expect(throws: RunnerError.self) { try policy.checkCapabilities(["SYS_PTRACE"], image: "job") }
        policy.allowedCapabilities = ["CAP_SYS_PTRACE"]
        #expect(try policy.checkCapabilities(["sys_ptrace", "CAP_SYS_PTRACE"], image: "job") == ["CAP_SYS_PTRACE"])
        #expect(throws: RunnerError.self) { try policy.checkCapabilities(["NOPE"], image: "job") }
        var settings = HookSettings()
        settings.capAdd = ["CAP_SYS_PTRACE"]
        #expect(
            settings.guestPolicy(layout: HostLayout(root: "/nonexistent")).allowedCapabilities == ["CAP_SYS_PTRACE"])
    }

    @Test func unitsGetDockersBoundingSetAndADenyList() throws {
        #expect(UnitSandbox().boundingSet == 0xa804_25fb)
        #expect(UnitSandbox(adding: ["CAP_SYS_PTRACE"]).boundingSet == 0xa80c_25fb)
        let unit = StepUnit(unit: "u.service", argv: ["/bin/true"], environment: [])
        let body = String(decoding: unit.startTransientUnitBody(), as: UTF8.self)
        for name in ["CapabilityBoundingSet", "SystemCallFilter", "SystemCallErrorNumber", "RestrictNamespaces"] {
            #expect(body.contains(name), "\(name)")
        }
        #expect(UnitSandbox.systemCallDenyList.contains("mount") && !UnitSandbox.systemCallDenyList.contains("chroot"))
    }
}
