import RunnerCore
import Testing

@testable import RunnerGuests

@Suite struct SystemdRunTests {
    @Test func guestServiceWrapsTheRegisteredBoot() {
        var boot = SystemdNspawn.BootOptions(directory: "/r", machine: "rg-0123456789ab")
        boot.register = true
        let command = SystemdRun().guestService(.init(unit: "rg-0123456789ab"), nspawn: SystemdNspawn().boot(boot))
        #expect(
            command.argv == [
                "systemd-run", "--unit=rg-0123456789ab", "--quiet", "--collect", "-p", "Delegate=yes", "-p",
                "Type=notify", "-p", "NotifyAccess=all", "-p", "KillMode=mixed", "-p", "TimeoutStartSec=60", "-p",
                "TimeoutStopSec=10", "--", "systemd-nspawn", "--quiet", "--keep-unit",
                "--directory=/r", "--machine=rg-0123456789ab", "--boot", "--volatile=overlay",
                "--notify-ready=yes", "--console=passive",
            ])
    }

    @Test func startTimeoutIsTheBootBound() {
        let command = SystemdRun().guestService(
            .init(unit: "g", startTimeoutSeconds: 90), nspawn: Command("systemd-nspawn", ["--boot"]))
        #expect(
            command.argv == [
                "systemd-run", "--unit=g", "--quiet", "--collect", "-p", "Delegate=yes", "-p", "Type=notify", "-p",
                "NotifyAccess=all", "-p", "KillMode=mixed", "-p", "TimeoutStartSec=90", "-p", "TimeoutStopSec=10", "--",
                "systemd-nspawn", "--boot",
            ])
    }

    @Test func limitsAreUnitProperties() {
        let limits = GuestLimits(memoryMax: 1 << 30, cpus: 1.5, tasksMax: 512)
        let command = SystemdRun().guestService(
            .init(unit: "g", limits: limits), nspawn: Command("systemd-nspawn", ["--boot"]))
        #expect(
            command.argv == [
                "systemd-run", "--unit=g", "--quiet", "--collect", "-p", "Delegate=yes", "-p", "Type=notify", "-p",
                "NotifyAccess=all", "-p", "KillMode=mixed", "-p", "TimeoutStartSec=60", "-p", "TimeoutStopSec=10",
                "-p", "MemoryMax=1073741824", "-p", "CPUQuota=150%", "-p", "TasksMax=512", "--",
                "systemd-nspawn", "--boot",
            ])
    }

    @Test func aJobsGuestRunsInTheJobsSlice() {
        let command = SystemdRun().guestService(
            .init(unit: "g", limits: GuestLimits(memoryMax: 512), slice: "runner-job-0123abcd.slice"),
            nspawn: Command("systemd-nspawn", ["--boot"]))
        #expect(
            command.argv == [
                "systemd-run", "--unit=g", "--quiet", "--collect", "-p", "Delegate=yes", "-p", "Type=notify", "-p",
                "NotifyAccess=all", "-p", "KillMode=mixed", "-p", "TimeoutStartSec=60", "-p", "TimeoutStopSec=10",
                "-p", "Slice=runner-job-0123abcd.slice", "-p", "MemoryMax=512", "--", "systemd-nspawn", "--boot",
            ])
    }
}
