import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests
@testable import RunnerSystem

/// The argv of the guest tools (systemd-nspawn, systemd-run, nsenter, machinectl, systemctl,
/// timeout) and the choice of backend.
@Suite struct GuestCommandLineTests {
    @Test func bootWithoutMachined() {
        var options = SystemdNspawn.BootOptions(directory: "/img/rootfs", machine: "rg-0123456789ab")
        options.binds = [
            GuestBind(source: "/w/_temp", target: "/__w/_temp"),
            GuestBind(source: "/w", target: "/__w"),
            GuestBind(source: "/e", target: "/__e", readOnly: true),
            GuestBind(source: nil, target: "/anon"),
            GuestBind(source: "/odd:path", target: "/t"),
        ]
        options.setenv = ["container_ttys": "0"]
        #expect(
            SystemdNspawn.boot(options).argv == [
                "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--directory=/img/rootfs",
                "--machine=rg-0123456789ab", "--boot", "--volatile=overlay", "--notify-ready=yes",
                "--console=passive", "--setenv=container_ttys=0", "--bind=/w:/__w", "--bind-ro=/e:/__e",
                "--bind=:/anon", "--bind=/odd\\:path:/t", "--bind=/w/_temp:/__w/_temp",
            ])
    }

    @Test func bootWithMachinedAsAService() {
        var options = SystemdNspawn.BootOptions(directory: "/r", machine: "rg-0123456789ab")
        options.register = true
        let command = SystemdRun.guestService(unit: "rg-0123456789ab", nspawn: SystemdNspawn.boot(options))
        #expect(
            command.argv == [
                "systemd-run", "--unit=rg-0123456789ab", "--quiet", "--collect", "-p", "Delegate=yes", "-p",
                "Type=notify", "-p", "NotifyAccess=all", "-p", "KillMode=mixed", "-p", "TimeoutStartSec=60", "-p",
                "TimeoutStopSec=10", "--", "systemd-nspawn", "--quiet", "--keep-unit",
                "--directory=/r", "--machine=rg-0123456789ab", "--boot", "--volatile=overlay",
                "--notify-ready=yes", "--console=passive",
            ])
    }

    @Test func nsenterEntersEveryNamespace() {
        var inner = Command("/bin/true", [])
        inner.environment = ["K": "v"]
        let command = Nsenter.enter(leader: 42, inner)
        #expect(command.argv == ["nsenter", "--target=42", "--all", "--", "/bin/true"])
        #expect(command.environment["K"] == "v")
    }

    @Test func machinectlAndSystemctl() {
        #expect(
            Machinectl.leader(machine: "g").argv == ["machinectl", "show", "g", "--property=Leader", "--value"])
        #expect(Machinectl.list().argv == ["machinectl", "list", "--no-legend", "--no-pager"])
        #expect(Systemctl.stop(unit: "u.service").argv == ["systemctl", "stop", "--no-block", "--", "u.service"])
        #expect(Systemctl.stop(unit: "u", block: true).argv == ["systemctl", "stop", "--", "u"])
        #expect(
            Systemctl.kill(unit: "u", signal: "SIGINT").argv == ["systemctl", "kill", "--signal=SIGINT", "--", "u"])
    }

    @Test func timeoutBoundsACommand() {
        #expect(
            Timeout.bounded(seconds: 20, Systemctl.stop(unit: "u.service", block: true)).argv == [
                "timeout", "--kill-after=5", "20", "systemctl", "stop", "--", "u.service",
            ])
    }

    @Test func backendDetection() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            #expect(GuestBackend.detect(layout: layout) == .direct)
            try FilePaths.createDirectory(layout.path("/run/systemd/system"))
            #expect(GuestBackend.detect(layout: layout) == .direct)
            try AtomicFile.write("", to: layout.path("/usr/lib/systemd/systemd-machined"))
            #expect(GuestBackend.detect(layout: layout) == .machined)
        }
    }
}
